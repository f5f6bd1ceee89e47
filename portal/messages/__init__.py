"""Messages to clients, therapists and staff: the kinds there are (``kinds``), the one way
to compose and queue one (``composer``) and what a change to a booking makes pointless
while it waits (``superseding``)."""
