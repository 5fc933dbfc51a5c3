CREATE TABLE accounts (code TEXT PRIMARY KEY, name TEXT);
INSERT INTO accounts VALUES ('b','Bee'),('A','Ay'),('10','Ten'),('9','Nine'),('a','ay');
CREATE TABLE events (code TEXT, n INTEGER);
INSERT INTO events VALUES ('9',1),('9',2),('10',5),('zz',1);
