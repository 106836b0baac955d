"""Sessions (and WebSocket subscriptions) in one DynamoDB table: the cloud's store.

Items (partition `pk`, sort `sk`):
- `S#<id>` / `META`: the immutable part of the record as JSON (`spec`), and the mutable part as
  attributes that conditions can test: status, version, lease_owner, lease_until,
  cancel_requested, reason, events_count, updated_at, and the state without its steps (`state`);
- `S#<id>` / `STEP#000001`: one item per step, written once (`attribute_not_exists`);
- `S#<id>` / `EVT#00000001`: one item per progress event, numbered from 1;
- `S#<id>` / `SUB#<connection>` and `C#<connection>` / `META`: WebSocket subscriptions.

A checkpoint is one TransactWriteItems: the new steps, the new events and the META update,
conditional on the version the worker read, on its lease, and on no cancel request. Two
workers can therefore never both advance a session, and a crash between a tool call and its
checkpoint leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.records import codec
from orchestrator.sessions.record import (
    CancelRequested,
    LeaseHeld,
    LeaseLost,
    SessionExists,
    SessionNotFound,
    SessionRecord,
    Status,
    StoredEvent,
    status_of,
)
from orchestrator.types import SessionState, Step

# Global secondary index of META items by owner (`tenant#user`), newest first.
OWNER_INDEX = "by-owner"
_ACTIVE = {":queued": {"S": Status.QUEUED.value}, ":running": {"S": Status.RUNNING.value}}


def _key(session_id: str, sk: str = "META") -> dict[str, Any]:
    return {"pk": {"S": f"S#{session_id}"}, "sk": {"S": sk}}


def create_table(client: Any, name: str) -> None:
    """Create the table as the CDK stack does (for `lockgate serve` and tests)."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "N"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["spec", "status", "version", "updated_at", "reason"],
                },
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


class DynamoSessions:
    """`SessionRepository` over a DynamoDB table (boto3 low-level client)."""

    def __init__(self, table: str, client: Any, retention_days: float = 30) -> None:
        self.table = table
        self.client = client
        self.retention_seconds = retention_days * 86_400

    def _expires(self, record: SessionRecord) -> dict[str, Any]:
        """The TTL attribute: every item of a session expires together, `retention_days` after
        the session was created (DynamoDB deletes expired items on its own)."""
        return {"expires_at": {"N": str(int(record.created_at + self.retention_seconds))}}

    # --- reading --------------------------------------------------------------------------

    def _record(self, item: dict[str, Any], steps: tuple[Step, ...] | None) -> SessionRecord:
        spec = json.loads(item["spec"]["S"])
        state = None
        if "state" in item:
            header = json.loads(item["state"]["S"])
            state = codec(SessionState).validate_python({**header, "steps": steps or ()})
        return SessionRecord.model_validate(
            {
                **spec,
                "status": item["status"]["S"],
                "version": int(item["version"]["N"]),
                "updated_at": float(item["updated_at"]["N"]),
                "lease_owner": item.get("lease_owner", {}).get("S"),
                "lease_until": float(item.get("lease_until", {"N": "0"})["N"]),
                "cancel_requested": item.get("cancel_requested", {}).get("BOOL", False),
                "reason": item.get("reason", {}).get("S"),
                "events_count": int(item.get("events_count", {"N": "0"})["N"]),
                "state": state,
            }
        )

    def _steps(self, session_id: str) -> tuple[Step, ...]:
        steps: list[Step] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"S#{session_id}"}, ":prefix": {"S": "STEP#"}},
            ConsistentRead=True,
        ):
            steps.extend(codec(Step).validate_json(item["body"]["S"]) for item in page["Items"])
        return tuple(steps)

    def get(self, session_id: str) -> SessionRecord:
        """The record and its checkpointed steps."""
        item = self.client.get_item(
            TableName=self.table, Key=_key(session_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            raise SessionNotFound(session_id)
        return self._record(item, self._steps(session_id) if "state" in item else None)

    def events(self, session_id: str, after: int, limit: int = 100) -> list[StoredEvent]:
        """Events numbered after `after`."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": {"S": f"S#{session_id}"},
                ":lo": {"S": f"EVT#{after + 1:08d}"},
                ":hi": {"S": "EVT#99999999"},
            },
            Limit=limit,
            ConsistentRead=True,
        )
        return [StoredEvent.model_validate_json(item["body"]["S"]) for item in response["Items"]]

    def owned(self, owner: str, limit: int, before: float | None = None) -> list[SessionRecord]:
        """An owner's sessions, newest first (the owner index; eventually consistent)."""
        condition = "#owner = :owner"
        values: dict[str, Any] = {":owner": {"S": owner}}
        if before is not None:
            condition += " AND created_at < :before"
            values[":before"] = {"N": repr(before)}
        response = self.client.query(
            TableName=self.table,
            IndexName=OWNER_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
        )
        # The index projects no state: the records carry none, and no steps are read.
        return [self._record(item, None) for item in response["Items"]]

    # --- writing --------------------------------------------------------------------------

    def create(self, record: SessionRecord) -> None:
        """Put the META item; the id must be new."""
        spec = record.model_dump_json(
            include={"session_id", "principal", "request", "options", "created_at"}
        )
        try:
            self._put(record, spec)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise SessionExists(record.session_id) from exc
            raise

    def _put(self, record: SessionRecord, spec: str) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                **_key(record.session_id),
                "spec": {"S": spec},
                "owner": {"S": record.owner},
                "created_at": {"N": repr(record.created_at)},
                "status": {"S": record.status.value},
                "version": {"N": "0"},
                "updated_at": {"N": repr(record.updated_at)},
                "events_count": {"N": "0"},
                **self._expires(record),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def _update(self, session_id: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            response = self.client.update_item(
                TableName=self.table, Key=_key(session_id), ReturnValues="ALL_NEW", **kwargs
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        item: dict[str, Any] = response["Attributes"]
        return item

    def claim(
        self, session_id: str, worker: str, now: float, lease_seconds: float
    ) -> SessionRecord:
        """Take the lease of an active session whose lease is free, expired or ours."""
        item = self._update(
            session_id,
            UpdateExpression="SET #status = :running, lease_owner = :me, lease_until = :until,"
            " version = version + :one, updated_at = :now",
            ConditionExpression="#status IN (:queued, :running)"
            " AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                **_ACTIVE,
                ":me": {"S": worker},
                ":until": {"N": repr(now + lease_seconds)},
                ":now": {"N": repr(now)},
                ":one": {"N": "1"},
            },
        )
        if item is None:
            record = self.get(session_id)  # SessionNotFound if it never existed
            if record.status.terminal:
                return record
            raise LeaseHeld(session_id)
        return self._record(item, self._steps(session_id) if "state" in item else None)

    def checkpoint(
        self, record: SessionRecord, state: SessionState, events: list[dict[str, Any]], now: float
    ) -> SessionRecord:
        """Atomically: new steps, new events, META (conditional on version, lease, cancel)."""
        done_steps = len(record.state.steps) if record.state else 0
        status = Status.RUNNING if state.outcome is None else status_of(state.outcome)
        writes: list[dict[str, Any]] = []
        for step in state.steps[done_steps:]:
            writes.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **_key(record.session_id, f"STEP#{step.index:06d}"),
                            "body": {"S": codec(Step).dump_json(step).decode()},
                            **self._expires(record),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        for offset, event in enumerate(events, start=1):
            seq = record.events_count + offset
            body = json.dumps({"seq": seq, **event}, default=str)
            writes.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **_key(record.session_id, f"EVT#{seq:08d}"),
                            "body": {"S": body},
                            **self._expires(record),
                        },
                    }
                }
            )
        condition = "version = :version AND lease_owner = :me"
        values: dict[str, Any] = {
            ":version": {"N": str(record.version)},
            ":me": {"S": record.lease_owner or ""},
            ":next": {"N": str(record.version + 1)},
            ":status": {"S": status.value},
            ":state": {"S": codec(SessionState).dump_json(state, exclude={"steps"}).decode()},
            ":events": {"N": str(record.events_count + len(events))},
            ":now": {"N": repr(now)},
        }
        if state.outcome is None:
            condition += " AND (attribute_not_exists(cancel_requested) OR cancel_requested = :no)"
            values[":no"] = {"BOOL": False}
        reason_expr = ""
        if state.reason and state.outcome is not None:
            reason_expr = ", reason = :reason"
            values[":reason"] = {"S": state.reason}
        writes.append(
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _key(record.session_id),
                    "UpdateExpression": "SET version = :next, #status = :status, #state = :state,"
                    " events_count = :events, updated_at = :now" + reason_expr,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#status": "status", "#state": "state"},
                    "ExpressionAttributeValues": values,
                }
            }
        )
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            current = self.get(record.session_id)
            if (
                current.cancel_requested
                and current.version == record.version
                and current.lease_owner == record.lease_owner
            ):
                raise CancelRequested(record.session_id) from exc
            raise LeaseLost(record.session_id) from exc
        return record.model_copy(
            update={
                "version": record.version + 1,
                "status": status,
                "state": state,
                "events_count": record.events_count + len(events),
                "updated_at": now,
                "reason": state.reason if state.outcome is not None else record.reason,
            }
        )

    def release(self, record: SessionRecord) -> None:
        """Free the lease so the next message can continue at once."""
        self._update(
            record.session_id,
            UpdateExpression="SET lease_until = :zero",
            ConditionExpression="lease_owner = :me",
            ExpressionAttributeValues={":zero": {"N": "0"}, ":me": {"S": record.lease_owner or ""}},
        )

    def request_cancel(self, session_id: str, now: float) -> SessionRecord:
        """A queued session is cancelled at once; a running one is flagged for its worker."""
        values = {":now": {"N": repr(now)}, ":yes": {"BOOL": True}, **_ACTIVE}
        item = self._update(
            session_id,
            UpdateExpression="SET #status = :cancelled, cancel_requested = :yes, updated_at = :now,"
            " reason = :reason",
            ConditionExpression="#status = :queued",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":now": values[":now"],
                ":yes": values[":yes"],
                ":queued": _ACTIVE[":queued"],
                ":cancelled": {"S": Status.CANCELLED.value},
                ":reason": {"S": "cancelled by the user before it started"},
            },
        )
        if item is None:
            item = self._update(
                session_id,
                UpdateExpression="SET cancel_requested = :yes, updated_at = :now",
                ConditionExpression="#status = :running",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now": values[":now"],
                    ":yes": values[":yes"],
                    ":running": _ACTIVE[":running"],
                },
            )
        if item is None:
            return self.get(session_id)
        return self._record(item, self._steps(session_id) if "state" in item else None)

    def fail(self, session_id: str, reason: str, now: float) -> None:
        """Mark an active session failed (its message reached the dead-letter queue)."""
        self._update(
            session_id,
            UpdateExpression="SET #status = :failed, reason = :reason, updated_at = :now, lease_until = :zero",
            ConditionExpression="#status IN (:queued, :running)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                **_ACTIVE,
                ":failed": {"S": Status.FAILED.value},
                ":reason": {"S": reason},
                ":now": {"N": repr(now)},
                ":zero": {"N": "0"},
            },
        )


def subscription_key(session_id: str, connection_id: str) -> dict[str, Any]:
    """The item that subscribes a connection to a session."""
    return {"pk": {"S": f"S#{session_id}"}, "sk": {"S": f"SUB#{connection_id}"}}


class DynamoSubscriptions:
    """`Subscriptions` in the sessions table: a connection item listing its sessions, and one
    item per (session, connection) so that a checkpoint finds its listeners with one query."""

    def __init__(self, table: str, client: Any) -> None:
        self.table, self.client = table, client

    @staticmethod
    def _connection(connection_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"C#{connection_id}"}, "sk": {"S": "META"}}

    def connect(self, connection_id: str, owner: str) -> None:
        """Put the connection item."""
        self.client.put_item(
            TableName=self.table,
            Item={**self._connection(connection_id), "principal": {"S": owner}},
        )

    def owner(self, connection_id: str) -> str | None:
        """The principal JSON the connection was opened with."""
        item = self.client.get_item(
            TableName=self.table, Key=self._connection(connection_id), ConsistentRead=True
        ).get("Item")
        return None if item is None else str(item["principal"]["S"])

    def subscribe(self, connection_id: str, session_id: str) -> None:
        """The subscription item, and the session added to the connection's set."""
        self.client.put_item(TableName=self.table, Item=subscription_key(session_id, connection_id))
        self.client.update_item(
            TableName=self.table,
            Key=self._connection(connection_id),
            UpdateExpression="ADD sessions :s",
            ExpressionAttributeValues={":s": {"SS": [session_id]}},
        )

    def connections(self, session_id: str) -> list[str]:
        """Connection ids subscribed to a session."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sub)",
            ExpressionAttributeValues={":pk": {"S": f"S#{session_id}"}, ":sub": {"S": "SUB#"}},
        )
        return [item["sk"]["S"].removeprefix("SUB#") for item in response["Items"]]

    def forget(self, connection_id: str, session_id: str | None = None) -> None:
        """Delete one subscription, or every subscription and the connection item."""
        if session_id is not None:
            self.client.delete_item(
                TableName=self.table, Key=subscription_key(session_id, connection_id)
            )
            return
        item = self.client.get_item(TableName=self.table, Key=self._connection(connection_id)).get(
            "Item", {}
        )
        for subscribed in item.get("sessions", {}).get("SS", []):
            self.client.delete_item(
                TableName=self.table, Key=subscription_key(subscribed, connection_id)
            )
        self.client.delete_item(TableName=self.table, Key=self._connection(connection_id))
