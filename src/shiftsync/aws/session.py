"""The AWS session shiftsync works in: the customer's role, assumed with the external ID.

Credentials refresh themselves before they expire (botocore's RefreshableCredentials) and once
more when AWS answers ExpiredToken, so a run can outlive the one-hour session. The session name
stays the same across refreshes: the Data API shows a statement only to the identity that ran
it, so a statement started before a refresh can still be described and fetched after it.
Endpoints come only from the standard AWS configuration (`AWS_ENDPOINT_URL_*`).
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal, ParamSpec, TypeVar, overload

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import (
    ClientError,
    ConfigParseError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from shiftsync.aws.botocore_seams import (
    current_access_key,
    replace_keys,
    session_with_credentials,
)
from shiftsync.aws.network import NETWORK_ERRORS, network_error
from shiftsync.aws.retry_log import observe_botocore_retries
from shiftsync.errors import AccessError, ConfigError

if TYPE_CHECKING:
    # The boto3 stubs are a development dependency: only mypy reads these.
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef

T = TypeVar("T")
P = ParamSpec("P")


SESSION_NAME: Final = "shiftsync"
EXPIRED_CODES: Final = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
# Standard retries with a few more attempts than the default: the Data API throttles per account.
CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "max_attempts": 6}, max_pool_connections=32
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def base_session(region: str) -> boto3.Session:
    """The platform identity shiftsync runs as, from the standard credential chain."""
    try:
        return boto3.Session(region_name=region)
    except ProfileNotFound as error:
        raise AccessError(
            f"the AWS profile {error.kwargs.get('profile')!r} (from AWS_PROFILE or "
            "AWS_DEFAULT_PROFILE) is not in the AWS config or credentials files",
            fix="name a profile of ~/.aws/config (`aws configure list-profiles`), or unset "
            "AWS_PROFILE to use the other sources of credentials",
        ) from error
    except ConfigParseError as error:
        raise AccessError(
            f"the AWS config file {error.kwargs.get('path')!r} does not parse",
            fix="fix the file (or point AWS_CONFIG_FILE at a good one)",
        ) from error


def caller_arn(session: boto3.Session) -> str:
    try:
        identity = session.client("sts", config=CLIENT_CONFIG).get_caller_identity()
    except NoCredentialsError as error:
        raise AccessError(
            "no AWS credentials were found for the identity shiftsync runs as",
            fix="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, as for the AWS CLI",
        ) from error
    except ClientError as error:
        raise AccessError(
            f"sts:GetCallerIdentity failed: {error_code(error)}: "
            f"{error.response.get('Error', {}).get('Message', '')}",
            fix="check the AWS credentials shiftsync runs with",
        ) from error
    return str(identity["Arn"])


class AssumedRoleSession:
    """One assumed-role session serving every client (redshift-data, S3) of a run."""

    def __init__(
        self,
        role_arn: str,
        external_id: str | None,
        region: str,
        *,
        duration_seconds: int = 3600,
        session_name: str = SESSION_NAME,
        base: boto3.Session | None = None,
    ) -> None:
        self.role_arn = role_arn
        self.external_id = external_id
        self.region = region
        self.duration_seconds = duration_seconds
        self.session_name = session_name
        self._base = base or base_session(region)
        self._lock = threading.Lock()
        self._clients: dict[str, BaseClient] = {}
        self.refreshes = 0
        self._credentials = RefreshableCredentials.create_from_metadata(
            metadata=self._fetch(), refresh_using=self._fetch, method="sts-assume-role"
        )
        self.boto3 = boto3.Session(
            botocore_session=session_with_credentials(self._credentials, region)
        )

    def _fetch(self) -> dict[str, str]:
        kwargs: AssumeRoleRequestTypeDef = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if self.external_id is not None:
            kwargs["ExternalId"] = self.external_id
        try:
            sts = self._base.client("sts", config=CLIENT_CONFIG)
            answer = sts.assume_role(**kwargs)["Credentials"]
        except (NoCredentialsError, NoRegionError) as error:
            raise AccessError(
                f"cannot assume {self.role_arn}: no AWS credentials for shiftsync itself",
                fix="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for the "
                "identity shiftsync runs as",
            ) from error
        except NETWORK_ERRORS as error:
            raise network_error(error, "sts", self.region) from error
        except ClientError as error:
            message = str(error.response.get("Error", {}).get("Message", ""))
            if error_code(error) == "ValidationError" and "MaxSessionDuration" in message:
                raise ConfigError(
                    f"sts:AssumeRole on {self.role_arn}: the session duration "
                    f"{self.duration_seconds} s is above the role's maximum ({message})",
                    fix="lower session_duration_seconds of the connection in shiftsync.yaml, "
                    "or raise the role's maximum: aws iam update-role --role-name "
                    f"{self.role_arn.rsplit('/', 1)[-1]} --max-session-duration "
                    f"{self.duration_seconds}",
                ) from error
            raise AccessError(
                f"sts:AssumeRole on {self.role_arn} was refused ({error_code(error)})",
                fix="the role's trust policy must name the identity shiftsync runs as, with "
                f"Condition StringEquals sts:ExternalId = {self.external_id}; "
                "`shiftsync policy` prints the exact trust policy",
            ) from error
        self.refreshes += 1
        expiration = answer["Expiration"]
        expiry = (
            expiration.isoformat() if isinstance(expiration, datetime.datetime) else str(expiration)
        )
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": expiry,
        }

    @overload
    def client(self, service: Literal["redshift-data"]) -> RedshiftDataAPIServiceClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...
    @overload
    def client(self, service: Literal["iam"]) -> IAMClient: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: str) -> BaseClient: ...
    def client(self, service: str) -> BaseClient:
        """The session's one client of `service` (made on first use; clients are thread-safe).

        The services shiftsync calls get their stub type; another (one whose stubs are not in
        the `dev` extra) is a plain botocore client.
        """
        with self._lock:
            if service not in self._clients:
                # boto3's stubs type the factory per service name; any name gives a client.
                factory: Callable[..., BaseClient] = self.boto3.client
                self._clients[service] = factory(service, config=CLIENT_CONFIG)
                # botocore retries silently: each retry is logged and counted instead.
                observe_botocore_retries(self._clients[service])
            return self._clients[service]

    def force_refresh(self, stale_access_key: str | None = None) -> None:
        """Fetch new credentials now (after AWS said the current ones expired).

        `stale_access_key` is the key AWS refused (default: the current one). If another
        thread has replaced it by the time this one gets the lock, its keys are used and no
        second AssumeRole is made.
        """
        credentials = self._credentials
        seen = stale_access_key if stale_access_key is not None else current_access_key(credentials)
        replace_keys(credentials, seen, self._fetch)

    def frozen_credentials(self) -> ReadOnlyCredentials:
        """Current access key, secret and token (for pyarrow's S3 filesystem); never log them."""
        return self._credentials.get_frozen_credentials()

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call an AWS client method; on ExpiredToken refresh once and call again."""
        # The key the call signs with, so that threads refused together refresh only once.
        used = self._credentials.get_frozen_credentials().access_key
        try:
            return fn(*args, **kwargs)
        except ClientError as error:
            if error_code(error) not in EXPIRED_CODES:
                raise
            self.force_refresh(used)
            return fn(*args, **kwargs)
