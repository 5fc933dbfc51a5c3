CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, age INTEGER,
  score REAL, vip INTEGER, signup TEXT, city TEXT);
INSERT INTO users VALUES
 (1,'ann@example.com','Ann',34,7.5,1,'2026-11-20T10:00:00Z','Paris'),
 (2,'bob@test.org','Bob',17,2.25,0,'2026-06-01T00:00:00Z','Berlin'),
 (3,NULL,'Cy',NULL,NULL,NULL,NULL,NULL),
 (10,'dee@example.com','dee',51,9,1,'2027-01-10T00:00:00Z','paris');
CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL, item TEXT, at TEXT);
INSERT INTO purchases (user_id, amount, item, at) VALUES
 (1, 10, 'pen', '2026-01-01T00:00:00Z'),
 (1, 30, 'book', '2026-03-01T00:00:00Z'),
 (1, 20, 'lamp', '2026-02-01T00:00:00Z'),
 (2, 5, 'gum', '2026-05-05T00:00:00Z'),
 (10, 100, 'desk', '2026-04-04T00:00:00Z'),
 (10, NULL, 'gift', '2026-04-05T00:00:00Z'),
 (99, 1, 'orphan', '2026-01-01T00:00:00Z');
