"""Messages to clients, therapists and staff: the kinds there are (``kinds``) and the one
way to compose and queue one (``composer``)."""
