-- Demo data: two tenants, a few airports, and daily flights for the next 90 days.
INSERT INTO customers (id, tenant_id, name, email, tier) VALUES
    ('C-1001', 'acme',   'Ada Lovelace',     'ada@acme.example',     'gold'),
    ('C-1002', 'acme',   'Grace Hopper',     'grace@acme.example',   'silver'),
    ('C-1003', 'acme',   'Alan Turing',      'alan@acme.example',    'standard'),
    ('C-2001', 'globex', 'Hank Scorpio',     'hank@globex.example',  'platinum'),
    ('C-2002', 'globex', 'Frank Grimes',     'frank@globex.example', 'standard')
ON CONFLICT (id) DO NOTHING;

INSERT INTO airports (code, name, city, country) VALUES
    ('CDG', 'Charles de Gaulle',   'Paris',     'FR'),
    ('ORY', 'Orly',                'Paris',     'FR'),
    ('LHR', 'Heathrow',            'London',    'GB'),
    ('JFK', 'John F. Kennedy',     'New York',  'US'),
    ('SFO', 'San Francisco Intl',  'San Francisco', 'US'),
    ('NRT', 'Narita',              'Tokyo',     'JP'),
    ('FRA', 'Frankfurt',           'Frankfurt', 'DE'),
    ('AMS', 'Schiphol',            'Amsterdam', 'NL'),
    ('LIS', 'Humberto Delgado',    'Lisbon',    'PT')
ON CONFLICT (code) DO NOTHING;

INSERT INTO flights (flight_no, origin, destination, departs_at)
SELECT r.flight_no, r.origin, r.destination,
       (current_date + d) + r.departs
FROM (VALUES
    ('LG100', 'CDG', 'JFK', time '09:30'),
    ('LG101', 'JFK', 'CDG', time '18:00'),
    ('LG200', 'LHR', 'SFO', time '11:15'),
    ('LG201', 'SFO', 'LHR', time '16:40'),
    ('LG300', 'AMS', 'LIS', time '07:05'),
    ('LG400', 'FRA', 'NRT', time '13:20')
) AS r (flight_no, origin, destination, departs)
CROSS JOIN generate_series(1, 90) AS d
ON CONFLICT (flight_no, departs_at) DO NOTHING;
