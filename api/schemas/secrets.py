"""Bodies of Keptn's secret-service routes (``/api/secrets/v1``).

Field names are the secret-service's ``model.Secret``, ``GetSecretsResponse`` (whose list is
``Secrets``, capitalised, as Keptn's Go struct serialised it) and ``GetScopesResponse``. Inputs
ignore unknown fields, as Go's JSON decoder did. No response carries a value: Keptn answered a
write with the whole secret, values included; Capstan answers with its keys.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from keptn.secrets import DEFAULT_SCOPE


class SecretBody(BaseModel):
    """``model.Secret`` as ``POST``/``PUT /secret`` receive it."""

    model_config = ConfigDict(extra="ignore")

    name: StrictStr = Field(description="the secret name: a DNS-1123 subdomain (lower case, '-', '.')")
    scope: StrictStr = Field(
        default=DEFAULT_SCOPE,
        description="who may read it: keptn-webhook-service for webhooks; empty means keptn-default",
    )
    data: dict[StrictStr, StrictStr] = Field(
        description="the values by key (keys: letters, numbers, '-', '_', '.'); at least one"
    )

    def __repr__(self) -> str:
        # Never let a value reach a log line or a traceback through repr().
        return f"SecretBody(name={self.name!r}, scope={self.scope!r}, keys={sorted(self.data)!r})"

    __str__ = __repr__


class SecretOut(BaseModel):
    """A secret as listed (``GetSecretResponseItem``): its name, scope and keys, never its values."""

    name: str
    scope: str
    keys: list[str] = Field(description="the secret's keys, sorted")


class SecretsOut(BaseModel):
    """``GetSecretsResponse``."""

    Secrets: list[SecretOut]


class ScopesOut(BaseModel):
    """``GetScopesResponse``."""

    scopes: list[str] = Field(description="Keptn's default scopes and every scope a secret uses")
