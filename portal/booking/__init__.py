"""Consultation requests and the times they take: free times, holds, booking, verification,
statuses, the waitlist, and what happens next."""
