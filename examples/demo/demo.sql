-- demo.sql: the bundled demo warehouse (users and their purchases).
-- scripts/demo.sh builds examples/demo/demo.db from this file.
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  email         TEXT NOT NULL,
  first_name    TEXT,
  last_name     TEXT,
  country       TEXT,
  created_at    TEXT,
  last_login_at TEXT,
  newsletter    INTEGER
);
CREATE TABLE purchases (
  id           INTEGER PRIMARY KEY,
  user_id      INTEGER NOT NULL REFERENCES users(id),
  item         TEXT NOT NULL,
  amount       REAL NOT NULL,
  purchased_at TEXT NOT NULL
);
INSERT INTO users VALUES
 (1,'ada@example.com','Ada','Lovelace','GB','2021-01-04','2026-11-20T09:12:00Z',1),
 (2,'alan@example.com','Alan','Turing','GB','2021-02-11','2026-10-01T18:00:00Z',0),
 (3,'grace@example.com','Grace','Hopper','US','2021-03-08','2026-11-23T07:45:00Z',1),
 (4,'edsger@example.com','Edsger','Dijkstra','NL','2021-05-30','2025-12-24T12:00:00Z',0),
 (5,'barbara@example.com','Barbara','Liskov','US','2021-07-14','2026-11-18T21:30:00Z',1),
 (6,'donald@example.com','Donald','Knuth','US','2021-09-02',NULL,0),
 (7,'margaret@example.com','Margaret','Hamilton','US','2022-01-19','2026-11-10T10:10:00Z',1),
 (8,'ken@example.com','Ken','Thompson',NULL,'2022-03-03','2026-06-30T06:00:00Z',NULL);
INSERT INTO purchases (user_id, item, amount, purchased_at) VALUES
 (1,'notebook',12.5,'2026-01-10T10:00:00Z'),
 (1,'analytical engine',250,'2026-03-02T15:30:00Z'),
 (2,'enigma manual',40,'2025-11-11T11:11:00Z'),
 (3,'compiler',99.99,'2026-02-14T09:00:00Z'),
 (3,'moth',0.5,'2026-09-09T09:09:00Z'),
 (3,'nanosecond wire',15,'2026-10-01T12:00:00Z'),
 (5,'clu license',120,'2026-05-05T05:05:00Z'),
 (7,'apollo guidance',300,'2026-07-20T20:17:00Z'),
 (7,'rope memory',45,'2026-08-01T08:00:00Z');
