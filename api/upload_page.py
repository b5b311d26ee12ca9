"""The upload page behind a signed link (`/r/{token}`, dispatched from
`api/routes/customer.py`): whoever the case asked for documents (a claim's driver or
customer, a new driver, a driver renewing a document) sends them here. Server-rendered,
multipart, no JavaScript.

What is shared lives here: the kinds a link names, the form, the upload (the same checks as
an ops upload: size before reading, content by its bytes, the file name only as a sanitized
label) and what every refusal shows. A claim's page takes several files at once and, where
the link asks for the customer's statement, a typed one: it is kept as a plain-text
attestation, exactly as an uploaded `.txt` statement would be, and added through the same
`add_document` update. What a purpose's page says (whether its case takes documents now,
its checklist, its wording) is a `DocumentsPage` (`api/claim_page.py`, `api/driver_page.py`).
The link does not name its recipient (a claim's link's kinds only say whether it went to the
driver or the customer), so documents added through it are by `link`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from api.casework import held_documents, query_state, run_update
from api.deps import CaseRef, Timeouts
from api.errors import Problem
from api.pages import PageError, notice, page_for, render
from api.uploads import (
    SentFile,
    UploadParts,
    UploadRejected,
    UploadTooLarge,
    open_upload_form,
    store_upload,
)
from core.documents import DocumentStore
from core.security import LinkClaims
from core.settings import Settings
from core.uploads import (
    ALLOWED_CONTENT_TYPES,
    EXTENSIONS,
    TEXT,
    detect_content_type,
    sanitize_filename,
)
from schemas import contracts
from schemas.cases import CaseState
from schemas.claims import AddDocumentInput
from schemas.documents import DocumentKind, DocumentRef

BY = "link"
MAX_STATEMENT_CHARS = 10_000
# Room for the longest statement in UTF-8 (up to 4 bytes a character, CRLF line breaks).
STATEMENT_FIELD_BYTES = 5 * MAX_STATEMENT_CHARS
STATEMENT_NAME = "statement.txt"
STATEMENT_WORDS = "your written statement"

LABELS = {
    DocumentKind.ATTEMPT_RECORD: "Delivery attempt record",
    DocumentKind.PROOF_OF_DELIVERY: "Proof of delivery",
    DocumentKind.DAMAGE_PHOTOS: "Photos of the damage",
    DocumentKind.CUSTOMER_ATTESTATION: "Statement of what was received",
    DocumentKind.PROOF_OF_VALUE: "Proof of value (invoice or receipt)",
    DocumentKind.POLICE_REPORT: "Police report",
    DocumentKind.INSURANCE_PAPERS: "Insurance papers",
    DocumentKind.OTHER: "Other document",
}


def label(kind: DocumentKind) -> str:
    """A document kind as people read it: "Photos of the damage", "Driving licence"."""
    return LABELS.get(kind) or kind.value.replace("_", " ").capitalize()


def file_types(kind: DocumentKind) -> str:
    """The file types an upload of `kind` may be, as people know them: "PDF, PNG, JPG, …"."""
    allowed = ALLOWED_CONTENT_TYPES[kind]
    names = (
        "plain text" if t == TEXT else ext.upper() for t, ext in EXTENSIONS.items() if t in allowed
    )
    return ", ".join(names)


def accept(kinds: list[DocumentKind]) -> str:
    """The file input's `accept`: the extensions and the types any of `kinds` takes."""
    allowed: set[str] = set().union(*(ALLOWED_CONTENT_TYPES[kind] for kind in kinds))
    extensions = [f".{ext}" for t, ext in EXTENSIONS.items() if t in allowed]
    return ",".join([*extensions, *sorted(allowed)])


def link_kinds(claims: LinkClaims) -> list[DocumentKind]:
    """The kinds the link asks for (its `kinds`); a link naming none is not valid."""
    raw = claims.data.get("kinds")
    try:
        kinds = [DocumentKind(value) for value in raw] if isinstance(raw, list) else []
    except ValueError:
        kinds = []
    if not kinds:
        raise PageError(400, "This link is not valid", "This link is not valid.")
    return list(dict.fromkeys(kinds))


def size_text(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):.0f} MB"
    return f"{max(1, limit // 1024)} KB"


class DocumentsPage(ABC):
    """What one link purpose's upload page says and when it takes documents."""

    form_template: str
    done_template: str
    stopped: tuple[str, str]
    """The heading and message when the case refuses the upload and says nothing more."""
    max_files: int = 1
    """How many files one send may carry."""

    def takes_statement(self, kinds: list[DocumentKind]) -> bool:
        """Whether the form offers a box to type a statement in (by default, never)."""
        return False

    @abstractmethod
    def refused(self, state: CaseState, claims: LinkClaims) -> PageError | None:
        """Why the form is not shown, or None when the case takes documents from this link."""

    def offered(self, state: CaseState, claims: LinkClaims) -> list[DocumentKind]:
        """The kinds the form offers (by default, every kind the link names)."""
        return link_kinds(claims)

    @abstractmethod
    def context(self, state: CaseState, kinds: list[DocumentKind]) -> dict[str, Any]:
        """The page's own facts (its case, its checklist), for both templates."""


def _kind_rows(kinds: list[DocumentKind]) -> list[dict[str, str]]:
    return [
        {"value": k.value, "label": label(k), "hint": k.description, "types": file_types(k)}
        for k in kinds
    ]


def _form(
    request: Request,
    settings: Settings,
    page: DocumentsPage,
    state: CaseState,
    kinds: list[DocumentKind],
    *,
    shop: str | None,
    answer: Answer | None = None,
    status: int = 200,
) -> HTMLResponse:
    answer = answer or Answer()
    context = {
        **page.context(state, kinds),
        "shop": shop,
        "kinds": _kind_rows(kinds),
        "accept": accept(kinds),
        "selected": answer.selected,
        "max_size": size_text(settings.max_upload_bytes),
        "max_files": page.max_files,
        "statement_ok": page.takes_statement(kinds),
        "statement": answer.statement,
        "max_statement": MAX_STATEMENT_CHARS,
        "error": answer.summary(),
        "errors": answer.errors,
        "received": answer.received,
        "refused": answer.refused,
        "already": answer.already,
    }
    response: HTMLResponse = render(request, page.form_template, context, status)
    return response


def upload_page(
    request: Request,
    settings: Settings,
    state: CaseState,
    claims: LinkClaims,
    page: DocumentsPage,
    *,
    shop: str | None = None,
) -> HTMLResponse:
    """GET: the form, or a page saying why documents are not taken (a refusal of the moment
    is a 200 page: nothing failed; a dead link keeps its status)."""
    link_kinds(claims)
    refused = page.refused(state, claims)
    if refused is not None:
        refused.status = 200 if refused.status == 409 else refused.status
        return notice(request, refused)
    return _form(request, settings, page, state, page.offered(state, claims), shop=shop)


@dataclass
class Answer:
    """What became of one sent form: the fields to show again, the errors by field (each a
    sentence), and what was received, refused or already held (by the name the sender
    knows it by)."""

    selected: str | None = None
    statement: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    received: list[str] = field(default_factory=list)
    """The statement (`STATEMENT_WORDS`) and the files' names, as taken."""
    files_as: str | None = None
    """What the files were sent as (one kind for the whole send), in words."""
    refused: list[str] = field(default_factory=list)
    """One sentence per file (or the statement) not taken, naming it and saying why."""
    already: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        """The sentence on top of the form: what was taken, then what was not."""
        if self.errors and not self.received and not self.refused:
            if "form" in self.errors:
                return f"{self.errors['form']} Nothing was sent yet."
            return "Nothing was sent yet: please check the fields marked below."
        if not self.refused:
            return None
        received = self.received_text()
        taken = f"We have received {received}. " if received else "Nothing was added. "
        count = len(self.refused)
        return taken + (
            "One item could not be accepted: see below."
            if count == 1
            else f"{count} items could not be accepted: see below."
        )

    def received_text(self) -> str:
        """ "your written statement and 2 files as photos of the damage: “a.png” and “b.png”"."""
        statement = [name for name in self.received if name == STATEMENT_WORDS]
        names = [name for name in self.received if name != STATEMENT_WORDS]
        if not names:
            return _names(statement)
        files = (
            f"{names[0]} as {self.files_as}"
            if len(names) == 1
            else f"{len(names)} files as {self.files_as}: {_names(names)}"
        )
        return _names([*statement, files])


def _names(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _statement_text(raw: str | None) -> str:
    """The typed statement as it is kept: line breaks as `\\n`, no space around it."""
    return (raw or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _file_label(sent: SentFile, number: int) -> str:
    name = sanitize_filename(sent.filename)
    return f"“{name}”" if name else f"file {number}"


def _content_refusal(kind: DocumentKind, data: bytes) -> str | None:
    """Why bytes of this type cannot be `kind`, in the sender's words (None: the type is
    one `kind` takes, or is none we know: the upload check says why then)."""
    detected = detect_content_type(data)
    if detected is None or detected in ALLOWED_CONTENT_TYPES[kind]:
        return None
    name = "a plain text file" if detected == TEXT else f"a {EXTENSIONS[detected].upper()} file"
    return f"it is {name}, and {label(kind).lower()} may be {file_types(kind)} only"


class _Stop(Exception):
    """The case stopped taking documents part-way (or could not be reached): `page` is
    what to show when nothing was received yet, `reason` what to say of the rest."""

    def __init__(self, page: HTMLResponse, reason: str) -> None:
        super().__init__(reason)
        self.page, self.reason = page, reason


async def upload_answer(
    request: Request,
    settings: Settings,
    state: CaseState,
    claims: LinkClaims,
    case: CaseRef,
    store: DocumentStore,
    timeouts: Timeouts,
    page: DocumentsPage,
    *,
    shop: str | None = None,
) -> HTMLResponse:
    """POST: the files (and a claim's typed statement) checked, stored and added to the case
    one by one, through the same `add_document` update an ops upload uses.

    A form that cannot be understood (no document chosen, too many files, nothing to send,
    a statement where none is asked for or too long) sends nothing and says which field to
    fix. Otherwise each file stands alone: the good ones are added, each bad one is named
    with its reason, and the page (422 when anything was refused) lists both; a statement
    that cannot be kept is shown again in its box."""
    link_kinds(claims)
    refused = page.refused(state, claims)
    if refused is not None:
        return notice(request, refused)
    kinds = page.offered(state, claims)
    limit = size_text(settings.max_upload_bytes)

    def form_page(answer: Answer, status: int) -> HTMLResponse:
        return _form(request, settings, page, state, kinds, shop=shop, answer=answer, status=status)

    try:
        async with open_upload_form(
            request,
            max_bytes=settings.max_upload_bytes,
            max_files=page.max_files,
            max_field_bytes=STATEMENT_FIELD_BYTES,
        ) as form:
            return await _take(
                request, settings, state, claims, case, store, timeouts, page, kinds, form, shop
            )
    except UploadTooLarge:
        if page.max_files == 1:
            message = f"This file is too large: files may be up to {limit}."
        else:
            message = (
                f"These files are too large to send together (each may be up to {limit}, "
                f"{page.max_files} at a time). Nothing was sent: please send fewer at a time."
            )
        return form_page(Answer(errors={"file": message}), 413)
    except HTTPException:  # a malformed multipart body, too many parts, a field too long
        message = (
            "We could not read your upload. Please choose the file and send it again."
            if page.max_files == 1
            else f"We could not read your upload. Please choose the files again (at most "
            f"{page.max_files}) and send them."
        )
        return form_page(Answer(errors={"file": message}), 400)


async def _take(
    request: Request,
    settings: Settings,
    state: CaseState,
    claims: LinkClaims,
    case: CaseRef,
    store: DocumentStore,
    timeouts: Timeouts,
    page: DocumentsPage,
    kinds: list[DocumentKind],
    form: UploadParts,
    shop: str | None,
) -> HTMLResponse:
    selected = (form.fields.get("kind") or "").strip() or None
    statement = _statement_text(form.fields.get("statement"))
    answer = Answer(selected=selected, statement=statement)
    files = form.files

    after: CaseState | None = None  # the case as the last document added left it

    def form_page(status: int) -> HTMLResponse:
        current = after or state
        return _form(
            request, settings, page, current, kinds, shop=shop, answer=answer, status=status
        )

    # The form as a whole first: anything wrong here and nothing is sent.
    if len(files) > page.max_files:
        answer.errors["file"] = (
            f"You chose {len(files)} files: please send at most {page.max_files} at a time."
        )
    kind = next((k for k in kinds if k.value == selected), None)
    if files and kind is None:
        answer.errors["kind"] = "Please choose which document you are sending."
    if statement and not page.takes_statement(kinds):  # no box for it: said on top
        answer.errors["form"] = "This link does not take a written statement: please send files."
    elif len(statement) > MAX_STATEMENT_CHARS:
        answer.errors["statement"] = (
            f"Your statement is {len(statement):,} characters long: please keep it to "
            f"{MAX_STATEMENT_CHARS:,}, or send it as a PDF."
        )
    if not files and not statement:
        if page.takes_statement(kinds):
            answer.errors["statement"] = "Please write your statement, or choose a file to send."
        else:
            answer.errors["file"] = "Please choose a file to send."
    if answer.errors:
        return form_page(422)

    held = list(held_documents(state.details))
    pending: list[tuple[str, DocumentKind, SentFile | bytes]] = []
    if statement:
        pending.append((STATEMENT_WORDS, DocumentKind.CUSTOMER_ATTESTATION, statement.encode()))
    pending += [(_file_label(sent, n), kind, sent) for n, sent in enumerate(files, 1) if kind]
    for position, (name, item_kind, source) in enumerate(pending):
        is_statement = not isinstance(source, SentFile)
        try:
            refusal, ref = await _store_one(settings, store, item_kind, source, held)
            if refusal is not None:
                _refuse(answer, name, refusal, is_statement)
                continue
            if ref is None:
                answer.already.append(f"{name} as {label(item_kind).lower()}")
                continue
            after = await _add(request, state, claims, case, timeouts, page, ref)
        except _Refused as err:
            _refuse(answer, name, err.reason, is_statement)
            continue
        except _Stop as stop:
            if not answer.received:
                return stop.page
            for rest, _, rest_source in pending[position:]:
                _refuse(answer, rest, stop.reason, not isinstance(rest_source, SentFile))
            break
        held.append({"kind": ref.kind.value, "sha256": ref.sha256})
        answer.received.append(name)
        if not is_statement:
            answer.files_as = label(item_kind).lower()
        if is_statement:
            answer.statement = ""
    if answer.refused or not answer.received:
        if not answer.refused:  # everything sent is held already: nothing failed
            return form_page(200)
        return form_page(422)
    done = after or state
    context = {
        **page.context(done, page.offered(done, claims)),
        "shop": shop,
        "received": answer.received_text(),
        "already": answer.already,
        "again_url": request.url.path,
    }
    response: HTMLResponse = render(request, page.done_template, context)
    return response


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _refuse(answer: Answer, name: str, reason: str, is_statement: bool) -> None:
    if is_statement:
        answer.errors["statement"] = f"We could not keep your statement: {reason}."
        answer.refused.append(f"Your written statement: {reason}.")
    else:
        answer.refused.append(f"{name[0].upper()}{name[1:]}: {reason}.")
        again = "Please choose again what could not be accepted (listed above), or another file."
        answer.errors.setdefault("file", again)


async def _store_one(
    settings: Settings,
    store: DocumentStore,
    kind: DocumentKind,
    source: SentFile | bytes,
    held: list[dict[str, Any]],
) -> tuple[str | None, DocumentRef | None]:
    """(why not, None) for bytes that cannot be `kind`; (None, None) for a document the
    case holds already; (None, the stored document) otherwise."""
    limit = size_text(settings.max_upload_bytes)
    if isinstance(source, SentFile):
        try:
            data = await source.read()
        except UploadTooLarge:
            return f"it is larger than {limit}, the most one file may be", None
        filename = source.filename
        if not data:
            return "the file is empty", None
    else:
        data, filename = source, STATEMENT_NAME
        if detect_content_type(data) != TEXT:
            return (
                "it can only be plain text: please leave out anything in angle brackets "
                "(< >) and any special characters",
                None,
            )
    refusal = _content_refusal(kind, data)
    if refusal is not None:
        return refusal, None
    try:
        ref = await store_upload(
            store,
            data,
            kind=kind,
            filename=filename,
            max_bytes=settings.max_upload_bytes,
            held=held,
        )
    except UploadRejected as err:
        return err.reason, None
    return None, ref


async def _add(
    request: Request,
    state: CaseState,
    claims: LinkClaims,
    case: CaseRef,
    timeouts: Timeouts,
    page: DocumentsPage,
    ref: DocumentRef,
) -> CaseState:
    """Tell the case (its `add_document` update, as an ops upload does). Should the case
    refuse the document now (filed or closed meanwhile), the stored file stays in the store
    unreferenced: an orphan, harmless."""
    try:
        after: CaseState = await run_update(
            case,
            contracts.ADD_DOCUMENT,
            AddDocumentInput(document=ref, by=BY),
            timeouts,
            refresh=False,
        )
    except Problem as problem:
        if problem.status == 422:
            raise _Refused(f"it could not be added ({problem.detail})") from None
        if problem.status == 409:
            fresh = await query_state(case.handle, timeouts)
            refused = (page.refused(fresh, claims) if fresh else None) or PageError(
                409, *page.stopped
            )
            refused.status = 409 if refused.status == 200 else refused.status
            raise _Stop(notice(request, refused), "not sent: we stopped taking documents") from None
        if problem.status == 503:
            message = "We could not save your document just now. Please try again in a few minutes."
            stopped = notice(request, PageError(503, "Please try again shortly", message))
            raise _Stop(stopped, "not saved: please send it again in a few minutes") from None
        raise _Stop(
            notice(request, page_for(problem)),
            "not confirmed: please open this link again in a few minutes to check",
        ) from None
    return after
