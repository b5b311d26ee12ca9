"""API keys (admin): the secret is shown once at creation; only its SHA-256 is stored."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from sqlmodel import col, select

from api.deps import AdminKey, Now, PageDep, SessionDep
from api.errors import Problem
from api.listing import paginate
from api.models import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, Page
from core.security import hash_api_key, new_api_key
from schemas.tables import ApiKey

router = APIRouter(prefix="/api-keys", tags=["api keys"])

PREFIX_LENGTH = 8


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a key (shown once)")
async def create_api_key(body: ApiKeyCreate, session: SessionDep, _: AdminKey) -> ApiKeyCreated:
    secret = new_api_key()
    key = ApiKey(
        name=body.name,
        role=body.role,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=hash_api_key(secret),
    )
    session.add(key)
    await session.commit()
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)


@router.get("", summary="List keys (no secrets)")
async def list_api_keys(session: SessionDep, _: AdminKey, page: PageDep) -> Page[ApiKeyOut]:
    statement = select(ApiKey).order_by(col(ApiKey.created_at), col(ApiKey.name))
    rows, total = await paginate(session, statement, page)
    return Page(
        items=[ApiKeyOut.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.delete("/{key_id}", summary="Revoke a key")
async def revoke_api_key(
    key_id: uuid.UUID, session: SessionDep, _: AdminKey, now: Now
) -> ApiKeyOut:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise Problem(404, f"unknown API key '{key_id}'")
    if key.revoked_at is None:
        key.revoked_at = now
        session.add(key)
        await session.commit()
    return ApiKeyOut.model_validate(key)
