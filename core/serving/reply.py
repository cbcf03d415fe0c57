"""What the service layer hands the UI besides data: UserError, a request the user can fix (the page
shows its message, core/ui/handlers.py turns it into Gradio's error), and KEEP, an output to leave as
it is (Gradio's skip). No gradio here."""


class UserError(ValueError):
    """A bad upload, control or request: its message says what to do."""


class _Keep:
    def __repr__(self):
        return "KEEP"


KEEP = _Keep()
