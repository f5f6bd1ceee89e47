"""Consultation requests and the times they take: the therapists and their hours, free
times, holds, booking, the email check, statuses, the waitlist, rebooking, intake,
retention and what happens next."""
