-- Lockgate core: idempotency records for tool writes, one row per (tool role, key).
-- Each tool role sees and writes only its own keys (row-level security on current_user).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE TABLE lockgate_idempotency (
    tool_role    name        NOT NULL DEFAULT current_user,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tool_role, key)
);
ALTER TABLE lockgate_idempotency ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_keys ON lockgate_idempotency
    USING (tool_role = current_user)
    WITH CHECK (tool_role = current_user);
