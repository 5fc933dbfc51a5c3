-- import.sql: builds data/source.sqlite from data/users.csv and data/purchases.csv, as
-- the example's data/import.js does with node (same tables, same column types, every
-- CSV value inserted as text, so an empty cell is '' and column affinity converts the
-- rest). joey's addition: run from this directory, the project root:
--   sqlite3 data/source.sqlite < import.sql
DROP TABLE IF EXISTS users;
CREATE TABLE IF NOT EXISTS users (
    "id" INTEGER PRIMARY KEY NOT NULL,
    "first_name" TEXT,
    "last_name" TEXT,
    "email" TEXT,
    "gender" TEXT,
    "ip_address" TEXT,
    "avatar" TEXT,
    "language" TEXT,
    "deactivated" BOOLEAN,
    "created_at" DATETIME,
    "updated_at" DATETIME
);
DROP TABLE IF EXISTS purchases;
CREATE TABLE IF NOT EXISTS purchases (
    "id" INTEGER PRIMARY KEY NOT NULL,
    "user_id" INTEGER,
    "item" INTEGER,
    "category" TEXT,
    "price" NUMERIC,
    "state" TEXT,
    "created_at" TEXT
);
.import --csv --skip 1 data/users.csv users
.import --csv --skip 1 data/purchases.csv purchases
