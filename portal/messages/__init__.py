"""Everything that leaves the portal as a message: the kinds there are and the one way to
compose and queue one, what each event queues, and the durable outbox with its senders
and mail transport."""
