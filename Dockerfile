# The casedesk image: the API (default command) and the worker (`python worker.py`) and the
# migrations (`python -m core.migrate`) run from it; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CASEDESK_DATA_DIR=/var/lib/casedesk

WORKDIR /app

# Dependencies first, from the pins alone, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
    && useradd --system --create-home --uid 10001 casedesk \
    && mkdir -p "$CASEDESK_DATA_DIR" \
    && chown casedesk "$CASEDESK_DATA_DIR"

USER casedesk
EXPOSE 8000

CMD ["python", "-m", "uvicorn", "api.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
