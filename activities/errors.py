"""Failure types the activities raise non-retryably; workflows catch them by `type` and hand
the case to a person instead of failing silently."""

RECIPIENT_NOT_FOUND = "RecipientNotFound"  # no dispatcher / contact on file for the role
EMAIL_REJECTED = "EmailRejected"  # the email backend refused the message (4xx other than 429)
TEMPLATE_ERROR = "TemplateError"  # a template is missing or failed to render
UNKNOWN_REFERENCE = "UnknownReference"  # a shipment, depot or pickup point does not exist
DOCUMENT_MISSING = "DocumentMissing"  # no stored document under a reference's id
DOCUMENT_INTEGRITY = "DocumentIntegrity"  # stored bytes do not match the reference's checksum
DOCUMENT_REJECTED = "DocumentRejected"  # the store refused a generated document (size, type)

PERMANENT_MESSAGE_FAILURES = (
    RECIPIENT_NOT_FOUND,
    EMAIL_REJECTED,
    TEMPLATE_ERROR,
    DOCUMENT_MISSING,
    DOCUMENT_INTEGRITY,
)
