"""Consultation requests and the times they take: free times, holds, booking, the email
check, statuses, the waitlist, rebooking, retention and what happens next."""
