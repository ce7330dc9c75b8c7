"""What a running stand-in tells its clients: endpoints, keys, names. No moto import here, so
clients (the benchmark's, for one) can read it without loading the stand-in itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StandInInfo:
    region: str
    endpoint: str
    access_key_id: str
    secret_access_key: str
    principal_arn: str
    role_arn: str
    external_id: str
    workgroup: str
    database: str
    bucket: str
    postgres_dsn: str

    def as_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "endpoints": {
                "sts": self.endpoint,
                "s3": self.endpoint,
                "redshift_data": self.endpoint,
                "glue": self.endpoint,
            },
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "principal_arn": self.principal_arn,
            "role_arn": self.role_arn,
            "external_id": self.external_id,
            "workgroup": self.workgroup,
            "database": self.database,
            "bucket": self.bucket,
            "postgres_dsn": self.postgres_dsn,
        }

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point any boto3 client at the stand-in."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL_STS": self.endpoint,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ENDPOINT_URL_REDSHIFT_DATA": self.endpoint,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.endpoint,
            "AWS_ENDPOINT_URL_GLUE": self.endpoint,
        }

    def export_lines(self) -> list[str]:
        """Shell lines for the endpoints (the keys are in the JSON file, not on the screen)."""
        return [
            f"export {k}={v}"
            for k, v in self.environment().items()
            if k.startswith("AWS_ENDPOINT_URL_") or k in ("AWS_DEFAULT_REGION", "AWS_REGION")
        ]

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> StandInInfo:
        """The inverse of `as_json` (the file `shiftsync local up --json-out` writes)."""
        return cls(
            region=document["region"],
            endpoint=document["endpoints"]["redshift_data"],
            access_key_id=document["access_key_id"],
            secret_access_key=document["secret_access_key"],
            principal_arn=document["principal_arn"],
            role_arn=document["role_arn"],
            external_id=document["external_id"],
            workgroup=document["workgroup"],
            database=document["database"],
            bucket=document["bucket"],
            postgres_dsn=document["postgres_dsn"],
        )
