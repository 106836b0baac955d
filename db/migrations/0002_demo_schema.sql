-- The demo domain: customers and bookings belong to a tenant; airports and flights are shared.
-- Tenant-owned tables use row-level security keyed on the transaction's lockgate.tenant_id,
-- which the tool kit sets from the authenticated principal (never from model output).
CREATE TABLE customers (
    id         text        PRIMARY KEY CHECK (id ~ '^C-[0-9]{4,8}$'),
    tenant_id  text        NOT NULL,
    name       text        NOT NULL,
    email      text        NOT NULL CHECK (position('@' IN email) > 1),
    tier       text        NOT NULL CHECK (tier IN ('standard', 'silver', 'gold', 'platinum')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON customers
    USING (tenant_id = current_setting('lockgate.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('lockgate.tenant_id', true));

CREATE TABLE airports (
    code    char(3) PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    name    text    NOT NULL,
    city    text    NOT NULL,
    country text    NOT NULL
);

CREATE TABLE flights (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    flight_no   text        NOT NULL,
    origin      char(3)     NOT NULL REFERENCES airports (code),
    destination char(3)     NOT NULL REFERENCES airports (code),
    departs_at  timestamptz NOT NULL,
    UNIQUE (flight_no, departs_at),
    CHECK (origin <> destination)
);
CREATE INDEX flights_route_day ON flights (origin, destination, departs_at);

CREATE TABLE bookings (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   text        NOT NULL DEFAULT current_setting('lockgate.tenant_id', true),
    customer_id text        NOT NULL,
    flight_id   uuid        NOT NULL REFERENCES flights (id),
    cabin       text        NOT NULL CHECK (cabin IN ('economy', 'premium_economy', 'business', 'first')),
    booked_by   text        NOT NULL DEFAULT current_setting('lockgate.user_id', true),
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
ALTER TABLE bookings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON bookings
    USING (tenant_id = current_setting('lockgate.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('lockgate.tenant_id', true));
