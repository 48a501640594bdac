"""Rate screen: blind pairwise rating of an experiment's answers, one rater per session.

The screen shows only what ``workbench.rating.sessions.next_pair`` returns (the incident and two
responses labelled 1 and 2): never a model, variant, arm letter, latency or token count. Which arm
is response 1 is decided and stored by the core, counterbalanced per rater. The reference answer
appears under the incident only when the experiment's rating settings say so.

``RateScreen(locked=True)`` is the browser rater's screen (``screens.rate_app``): the session is
fixed by the rater's link, there is no chooser and no other screen to go to.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Header, Input, ProgressBar
from .widgets.safe import Select, Static, Text
from textual.worker import Worker

from workbench.terminal_text import safe_text

from .base import WorkbenchScreen
from .dialogs import Field, FormDialog
from .rating_draft import (LOCKED_HELP, RATE_HELP, Draft, Step, advance, done_text,
                           rateable_experiments)
from .widgets.side_by_side import OutputPane

INTRO = ("Blind rating: each incident comes with two answers, labelled 1 and 2 in a random, "
         "balanced order. Nothing on this screen says which model wrote which. Choose an "
         "experiment, type your name (each rater has their own session, resumed where it "
         "stopped) and press Enter.")


class RateScreen(WorkbenchScreen):
    TITLE = "Rate"
    HELP = RATE_HELP
    BINDINGS = [
        Binding("1", "digit(1)", "Prefer 1"),
        Binding("2", "digit(2)", "Prefer 2"),
        Binding("3", "digit(3)", "Score 3", show=False),
        Binding("4", "digit(4)", "Score 4", show=False),
        Binding("5", "digit(5)", "Score 5", show=False),
        # every other digit too: in a session no number key may reach the app's screen keys
        *(Binding(key, f"digit({key})", "Not a score", show=False) for key in "67890"),
        Binding("t", "choose('tie')", "Tie"),
        Binding("b", "choose('both_bad')", "Both bad"),
        Binding("s", "skip", "Skip"),
        Binding("a", "scores", "Scores"),
        Binding("n", "note", "Note"),
        Binding("enter", "store", "Store"),
        Binding("u", "undo", "Undo"),
        Binding("c", "change", "Change"),
        Binding("backspace", "score_back", "Previous score", show=False),
        Binding("escape", "score_done", "Stop typing scores", show=False),
    ]

    def __init__(self, locked: bool = False) -> None:
        super().__init__()
        self.locked = locked  # the browser rater's screen: one session, no chooser
        if locked:
            self.HELP = LOCKED_HELP
        self.rater = ""
        self.session = None  # workbench.rating.sessions.Session once opened
        self.pair = None  # the PairView on screen
        self.draft = Draft()
        self.timer = None  # workbench.rating.sessions.ItemTimer of the pair on screen
        self.busy = False
        self._away_since: float | None = None
        self._started_from_settings = False
        self._choices_loading = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="rate-chooser"):
            yield Static(INTRO, id="rate-intro")
            with Horizontal(id="rate-choose-row"):
                yield Select([], id="rate-experiment", prompt="experiment to rate", compact=True)
                yield Input(placeholder="your name", id="rate-rater", compact=True)
                yield Button("Start rating", id="rate-start", variant="primary", compact=True)
        with Horizontal(id="rate-bar"):
            yield Static("", id="rate-session")
            yield ProgressBar(id="rate-progress", show_eta=False, show_percentage=False)
            yield Static("", id="rate-count")
        yield OutputPane(id="rate-incident", classes="panel")
        with Horizontal(id="rate-responses"):
            for side in "12":
                with Vertical(classes="rate-side"):
                    yield OutputPane(id=f"response-{side}", classes="output-pane panel")
                    yield Static("", id=f"scores-{side}", classes="rate-scores")
        yield Static("", id="rate-status")
        yield Static("", id="rate-done")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#rate-incident", OutputPane).border_title = "Incident"
        for side in "12":
            self.query_one(f"#response-{side}", OutputPane).border_title = f"Response {side}"
        wanted = self.wb.settings.rate
        if wanted and not self._started_from_settings:
            self._started_from_settings = True
            self.rater = wanted[1].strip()
            self.query_one("#rate-done", Static).update("Opening the rating session…")
            self.show_state("opening")
            self.open(wanted[0], self.rater)
        else:
            self.show_chooser()

    def validate_title(self, title: object) -> str | None:
        """A locked screen is titled "Blind rating", never with the app's list of screens."""
        return "Blind rating" if getattr(self, "locked", False) else super().validate_title(title)

    def on_screen_suspend(self) -> None:
        self._away_since = time.monotonic()

    def on_screen_resume(self) -> None:
        if self.timer is not None and self._away_since is not None:
            self.timer.started += time.monotonic() - self._away_since  # time away is not rating
        self._away_since = None
        if self.session is None and not self.busy and not self._choices_loading and not self.locked:
            self.load_choices()

    # -- states ------------------------------------------------------------------------------
    def show_state(self, state: str) -> None:
        """'choosing', 'opening', 'rating' or 'done': which parts of the screen are visible."""
        parts = {"#rate-chooser": ("choosing",), "#rate-bar": ("rating", "done"),
                 "#rate-incident": ("rating",), "#rate-responses": ("rating",),
                 "#rate-status": ("rating",), "#rate-done": ("done", "opening")}
        for selector, states in parts.items():
            self.query_one(selector).display = state in states
        self.refresh_bindings()

    def show_chooser(self) -> None:
        self.session, self.pair, self.timer, self.draft = None, None, None, Draft()
        self.query_one("#rate-rater", Input).value = self.rater
        self.show_state("choosing")
        self.query_one("#rate-experiment", Select).focus()
        self.load_choices()

    def load_choices(self) -> None:
        self._choices_loading = True
        self.in_background(rateable_experiments, self.show_choices,
                           name="listing experiments to rate", group="choices")

    def show_choices(self, options: list[tuple[str, int]]) -> None:
        self._choices_loading = False
        select = self.query_one("#rate-experiment", Select)
        current = select.value
        select.set_options(options)
        ids = [exp_id for _, exp_id in options]
        if current in ids:
            select.value = current
        elif ids:
            select.value = ids[-1]
        else:
            select.prompt = "no experiment with answers from both A and B yet"

    # -- opening a session -------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "rate-start":
            event.stop()
            self.start_from_chooser()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "rate-rater":
            event.stop()
            self.start_from_chooser()

    def start_from_chooser(self) -> None:
        exp_id = self.query_one("#rate-experiment", Select).value
        rater = self.query_one("#rate-rater", Input).value.strip()
        if not isinstance(exp_id, int):
            self.notify("Choose an experiment first (run a shadow replay to get one).",
                        title="Rate", severity="warning")
            return
        if not rater:
            self.notify("Type your name: each rater has their own session.", title="Rate",
                        severity="warning")
            self.query_one("#rate-rater", Input).focus()
            return
        self.rater = rater
        self.open(exp_id, rater)

    def open(self, exp_id: int, rater: str) -> None:
        source = "browser" if self.locked else "app"

        def job(store) -> Step:
            from workbench.rating.sessions import open_session

            return advance(store, open_session(store, exp_id, rater, source=source))

        self.run_job(job, "opening the rating session", self.opened)

    def opened(self, step: Step) -> None:
        rated = step.rated
        self.notify(f"Rating as {step.session.rater}: " +
                    (f"resuming after {rated} of {step.total} pairs." if rated else
                     f"{step.total} pairs to rate."), title="Rate")
        self.show_step(step)

    # -- the pair on screen ------------------------------------------------------------------
    def show_step(self, step: Step) -> None:
        from workbench.rating.sessions import ItemTimer

        self.session, self.pair, self.draft = step.session, step.pair, Draft()
        session = Text.assemble(("Experiment ", "dim"), (f"#{step.session.experiment_id}", "bold"),
                                ("  rater ", "dim"), (safe_text(step.session.rater), "bold"))
        self.query_one("#rate-session", Static).update(session)
        self.query_one("#rate-progress", ProgressBar).update(total=max(step.total, 1),
                                                             progress=step.rated)
        self.query_one("#rate-count", Static).update(
            f"{step.rated} / {step.total} rated" + (f" · {step.skipped} skipped" if step.skipped
                                                    else ""))
        if step.pair is None:
            self.timer = None
            self.show_done(step)
            return
        pair = step.pair
        incident = Text(safe_text(pair.incident, multiline=True))
        if pair.reference:
            incident.append("\n\nReference answer (from the dataset)\n", style="bold")
            incident.append(safe_text(pair.reference, multiline=True), style="italic")
        self.query_one("#rate-incident", OutputPane).show(incident)
        for side, text in (("1", pair.response_1), ("2", pair.response_2)):
            self.query_one(f"#response-{side}", OutputPane).show(
                Text(safe_text(text, multiline=True)) if text.strip()
                else Text("(empty answer)", style="dim italic"))
        self.show_state("rating")
        self.show_draft()
        self.query_one("#rate-incident", OutputPane).focus()
        self.timer = ItemTimer()

    def show_done(self, step: Step) -> None:
        self.query_one("#rate-done", Static).update(done_text(step, locked=self.locked))
        self.show_state("done")

    def show_draft(self) -> None:
        for side in "12":
            pane = self.query_one(f"#response-{side}", OutputPane)
            chosen = self.draft.choice in (side, "tie")
            pane.border_title = f"Response {side}" + ("  ✓ preferred" if self.draft.choice == side
                                                      else "  = tie" if chosen else "")
            self.query_one(f"#scores-{side}", Static).update(self.draft.scores_line(side))
        self.query_one("#rate-status", Static).update(self.draft.status_line())

    # -- keys --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        rating = self.pair is not None and not self.busy
        if action == "digit":  # in a session digits only rate; in the chooser they change screens
            return True if self.session is not None or self.draft.scoring or self.locked else None
        if action == "change":
            return False if self.locked else True  # False: not shown at all
        if action in ("score_back", "score_done"):
            return True if self.draft.scoring else None
        if action in ("choose", "skip", "scores", "note", "store"):
            return True if rating else None
        if action == "undo":
            return True if self.session is not None and not self.busy else None
        return True

    def action_digit(self, value: int) -> None:
        if self.pair is None or self.busy:  # between pairs or after the last: digits do nothing
            if self.session is not None and self.pair is None and not self.busy:
                self.notify("Every pair of this session is rated: nothing to score."
                            + ("" if self.locked else " Ctrl+P changes screens."), title="Rate")
            return
        if not 1 <= value <= 5:
            self.notify("Scores are 1-5; 1 or 2 prefers a response.", title="Rate",
                        severity="warning")
            return
        if self.draft.scoring:
            self.draft.type_score(value)
        elif value in (1, 2):
            self.draft.choice = str(value)
        else:  # a score typed without a first: say how, rather than switch screens
            self.notify("To type scores press a, then four digits 1-5 (accuracy and safety of "
                        "response 1, then of response 2)." +
                        ("" if self.locked else " Ctrl+P changes screens."),
                        title="Rate", severity="warning")
            return
        self.draft_changed()

    def action_choose(self, choice: str) -> None:
        self.draft.stop_scores()
        self.draft.choice = choice
        self.draft_changed()

    def action_scores(self) -> None:
        self.draft.start_scores()
        self.draft_changed()

    def action_score_back(self) -> None:
        self.draft.back()
        self.draft_changed()

    def action_score_done(self) -> None:
        self.draft.stop_scores()
        self.draft_changed()

    def draft_changed(self) -> None:
        self.show_draft()
        self.refresh_bindings()

    def action_note(self) -> None:
        def keep(values: dict | None) -> None:
            if values is not None:
                self.draft.note = values["note"]
                self.show_draft()

        self.app.push_screen(FormDialog("Note on this pair", [
            Field("note", "Note (stored with the rating)", self.draft.note,
                  placeholder="e.g. response 2 suggests a risky command")], ok="Keep note"), keep)

    def action_store(self) -> None:
        if self.draft.choice is None:
            self.notify("Choose first: 1 or 2 prefers a response, t is a tie, b: both bad "
                        "(s skips the pair).",
                        title="Rate", severity="warning")
            return
        self.store(self.draft.choice)

    def action_skip(self) -> None:
        self.store("skip")

    def store(self, choice: str) -> None:
        from workbench.rating.sessions import record_rating

        session, item_id, fields = self.session, self.pair.item_id, self.draft.fields()
        seconds = self.timer.elapsed() if self.timer else None

        def job(store) -> Step:
            record_rating(store, session, item_id, choice, seconds=seconds, **fields)
            return advance(store, session)

        self.run_job(job, "storing the rating", self.show_step)

    def action_undo(self) -> None:
        from workbench.rating.sessions import undo_last

        session = self.session

        def job(store) -> Step:
            return advance(store, session, undone=undo_last(store, session) or 0)

        def done(step: Step) -> None:
            self.notify("Undid your last rating: that pair is shown again." if step.undone else
                        "Nothing to undo in this session.", title="Rate")
            self.show_step(step)

        self.run_job(job, "undoing the last rating", done)

    def action_change(self) -> None:
        if not self.busy and not self.locked:
            self.show_chooser()

    # -- jobs --------------------------------------------------------------------------------
    def run_job(self, job, name: str, done) -> None:
        """One rating job at a time; keys that store or undo wait until it is finished."""
        if self.busy:
            return
        self.busy = True
        self.refresh_bindings()

        def finished(step: Step) -> None:
            self.busy = False
            done(step)
            self.refresh_bindings()

        self.in_background(job, finished, name=name, group="rate")

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        if worker.group == "choices":
            self._choices_loading = False
        if worker.group == "rate":
            self.busy = False
            if self.session is None and self.locked:
                self.query_one("#rate-done", Static).update(
                    "This rating session cannot be opened. Ask the person who runs the study.")
                self.show_state("opening")
            elif self.session is None:
                self.show_chooser()
            self.refresh_bindings()
        super().worker_failed(worker, error)
