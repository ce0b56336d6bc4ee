"""Build the one Message of a run that every notifier sends: subject, text, HTML, log tail; masked, bounded."""

from __future__ import annotations

import html

from ncbackup.engine.logs import mask_secrets
from ncbackup.engine.result import RunResult, Status, StepResult, human_size
from ncbackup.notify.base import Message

TEXT_MAX_CHARS = 16 * 1024
LOG_TAIL_MAX_CHARS = 60_000     # what the legacy post's log field carries
FAILURE_LOG_LINES = 40          # how much of the log a failure message quotes
PROBLEM_MAX_CHARS = 500         # one section's "why", cut past this
PROBLEM_MAX_LINES = 20          # 20 x 500 characters leave room for the figures under TEXT_MAX_CHARS

STATUS_WORDS = {Status.OK: "success", Status.WARNING: "warning", Status.FAILED: "failed", Status.SKIPPED: "skipped"}


def bounded_tail(text: str, limit_chars: int) -> str:
    """Keep the end of text (the most recent lines matter most), marked when cut."""
    if len(text) <= limit_chars:
        return text
    marker = "[... earlier log lines cut ...]\n"
    return marker + text[-(limit_chars - len(marker)):]


def _cut(text: str, limit_chars: int) -> str:
    return text if len(text) <= limit_chars else text[:limit_chars - 1] + "…"


def subject_line(result: RunResult, *, is_test: bool = False) -> str:
    if is_test:
        return f"ncbackup {result.hostname}: test message"
    subject = f"ncbackup {result.hostname}: {STATUS_WORDS[result.status]}"
    failed = sum(step.status == Status.FAILED for step in result.steps)
    if failed:
        subject += f" ({failed} of {len(result.steps)} sections)"
    return subject


def problem_lines(result: RunResult) -> list[str]:
    """One line per failed or warning section (and per run-level error or warning), saying why."""
    lines = [f"run failed: {result.error}"] if result.error else []
    for step in result.steps:
        if step.error:
            lines.append(f"{step.name} failed: {step.error}")
        lines += [f"{step.name} warning: {text}" for text in step.warnings]
    lines += [f"warning: {text}" for text in result.warnings]
    lines = [_cut(" ".join(line.split()), PROBLEM_MAX_CHARS) for line in lines]
    if len(lines) > PROBLEM_MAX_LINES:
        lines = lines[:PROBLEM_MAX_LINES - 1] + [f"... and {len(lines) - PROBLEM_MAX_LINES + 1} more"]
    return lines


def prune_lines(steps: list[StepResult]) -> list[str]:
    """What retention pruned after the sets (CLEANUP), one line per storage."""
    return [
        f"pruned {item['storage']}: removed {len(item['removed'])} set(s), freed {human_size(item['freed_bytes'])}, "
        f"kept {len(item['kept'])}" + (f"; {len(item['warnings'])} failed delete(s)" if item["warnings"] else "")
        for step in steps for item in step.pruned
    ]


def figure_lines(result: RunResult) -> list[tuple[str, str]]:
    """(label, value) pairs: the facts every message states."""
    set_ids = [step.set_id for step in result.steps if step.set_id]
    sizes = f"{human_size(result.bytes_in)} read, {human_size(result.bytes_out)} stored"
    if result.size_human:
        sizes += f"; backup size {result.size_human}"
    return [
        ("host", result.hostname),
        ("result", f"{result.status.value} (exit {result.exit_status})"),
        ("config", result.config_path),
        ("set", ", ".join(set_ids) or "none"),
        ("started", result.start.strftime("%Y-%m-%d %H:%M:%S %Z").strip()),
        ("duration", f"{result.duration_seconds:.1f} s"),
        ("data", sizes),
        ("destinations", ", ".join(result.destinations) or "none"),
    ]


def _text(figures: list[tuple[str, str]], problems: list[str], pruned: list[str], log_lines: list[str],
          *, is_test: bool) -> str:
    lines = ["This is a test message from `ncbackup notify-test`; no backup ran."] if is_test else []
    lines += [f"{label}: {value}" for label, value in figures]
    if problems:
        lines += ["", "problems:"] + [f"  {line}" for line in problems]
    if pruned:
        lines += ["", "pruned:"] + [f"  {line}" for line in pruned]
    if log_lines:
        lines += ["", "last log lines:"] + log_lines
    return "\n".join(lines) + "\n"


def _html(subject: str, figures: list[tuple[str, str]], problems: list[str], pruned: list[str],
          log_lines: list[str], *, is_test: bool) -> str:
    e = html.escape
    parts = [f"<h3>{e(subject)}</h3>"]
    if is_test:
        parts.append("<p>This is a test message from <code>ncbackup notify-test</code>; no backup ran.</p>")
    rows = "".join(f"<tr><th align=\"left\">{e(label)}</th><td>{e(value)}</td></tr>" for label, value in figures)
    parts.append(f"<table>{rows}</table>")
    for title, items in (("problems", problems), ("pruned", pruned)):
        if items:
            parts.append(f"<p><b>{title}</b></p><ul>" + "".join(f"<li>{e(item)}</li>" for item in items) + "</ul>")
    if log_lines:
        parts.append("<p><b>last log lines</b></p><pre>" + e("\n".join(log_lines)) + "</pre>")
    return "\n".join(parts) + "\n"


def build_message(result: RunResult, log_text: str, *, is_test: bool = False) -> Message:
    """The run's Message: every text masked of registered secrets, the text under TEXT_MAX_CHARS."""
    log_tail = bounded_tail(mask_secrets(log_text), LOG_TAIL_MAX_CHARS)
    subject = mask_secrets(subject_line(result, is_test=is_test))
    figures = [(label, mask_secrets(value)) for label, value in figure_lines(result)]
    problems = [mask_secrets(line) for line in problem_lines(result)]
    pruned = [mask_secrets(line) for line in prune_lines(result.steps)]
    log_lines = log_tail.splitlines()[-FAILURE_LOG_LINES:] if result.status == Status.FAILED else []
    # The log lines give way first (oldest first); the final cut only guards against a huge host or path.
    text = _text(figures, problems, pruned, log_lines, is_test=is_test)
    while len(text) > TEXT_MAX_CHARS and log_lines:
        log_lines = log_lines[1 + len(log_lines) // 4:]
        text = _text(figures, problems, pruned, log_lines, is_test=is_test)
    text = _cut(text, TEXT_MAX_CHARS)
    page = _html(subject, figures, problems, pruned, log_lines, is_test=is_test)
    return Message(result=result, status=result.status, subject=subject, text=text, html=page,
                   log_tail=log_tail, is_test=is_test)

