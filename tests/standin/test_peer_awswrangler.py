"""awswrangler's Data API reader, unchanged, against the stand-in (the `peer` extra).

awswrangler is not a dependency of shiftsync; `make test-peer` installs it and runs these.
It reaches the stand-in only through the AWS_ENDPOINT_URL_* variables, with a boto3 session
of the assumed role, as it would reach AWS.
"""

from __future__ import annotations

from typing import Any

import pytest

from shiftsync.aws.session import AssumedRoleSession
from shiftsync.local.standin import StandIn, StandInInfo

pytestmark = pytest.mark.peer


def _connect(assumed: AssumedRoleSession, info: StandInInfo) -> Any:
    # Imported here: collecting this file must not need awswrangler when the test is deselected.
    import awswrangler as wr

    return wr.data_api.redshift.connect(
        workgroup_name=info.workgroup, database=info.database, boto3_session=assumed.boto3
    )


def test_read_sql_query_reads_a_table(
    standin: StandIn, assumed: AssumedRoleSession, info: StandInInfo
) -> None:
    import awswrangler as wr

    con = _connect(assumed, info)
    assert con.client.meta.endpoint_url == info.endpoint
    frame = wr.data_api.redshift.read_sql_query(
        "select catid, catname from public.category order by catid", con=con
    )
    with standin.admin_connection() as admin:
        expected = admin.execute("select catid, catname from public.category order by catid")
        rows = expected.fetchall()
    assert list(frame.columns) == ["catid", "catname"]
    assert [(int(a), str(b)) for a, b in frame.itertuples(index=False)] == rows


def test_read_sql_query_follows_every_page(assumed: AssumedRoleSession, info: StandInInfo) -> None:
    import awswrangler as wr

    frame = wr.data_api.redshift.read_sql_query(
        "select n, repeat('x', 500) as pad from generate_series(1, 2500) as n order by n",
        con=_connect(assumed, info),
    )
    assert len(frame) == 2500
    assert [int(n) for n in frame["n"]] == list(range(1, 2501))
