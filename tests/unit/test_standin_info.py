from __future__ import annotations

from shiftsync.local.info import StandInInfo

INFO = StandInInfo(
    region="us-east-1",
    endpoint="http://127.0.0.1:5000",
    access_key_id="AKIAEXAMPLE",
    secret_access_key="not-a-real-secret",
    principal_arn="arn:aws:iam::111111111111:user/shiftsync-runner",
    role_arn="arn:aws:iam::222222222222:role/shiftsync-reader",
    external_id="shiftsync-abc",
    workgroup="shiftsync-demo",
    database="dev",
    bucket="shiftsync-staging-222222222222",
    postgres_dsn="postgresql://postgres@127.0.0.1:5432/dev",
)


def test_the_json_document_reads_back_to_the_same_info() -> None:
    assert StandInInfo.from_json(INFO.as_json()) == INFO


def test_every_service_points_at_the_one_endpoint() -> None:
    env = INFO.environment()
    assert {env[f"AWS_ENDPOINT_URL_{s}"] for s in ("STS", "S3", "REDSHIFT_DATA")} == {INFO.endpoint}


def test_export_lines_never_show_the_keys() -> None:
    text = "\n".join(INFO.export_lines())
    assert INFO.secret_access_key not in text
    assert INFO.access_key_id not in text
    assert "export AWS_ENDPOINT_URL_REDSHIFT_DATA=http://127.0.0.1:5000" in text
