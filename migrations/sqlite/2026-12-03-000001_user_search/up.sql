-- A trigram index for the administrators' user search (`q`, a case-insensitive substring of
-- the e-mail, username, first or last name), so it stays fast with a million users: an FTS5
-- table with the trigram tokenizer answers substring queries of three or more characters. The
-- adapter uses it to find candidates and then applies the exact per-field match, so the
-- index only has to find a superset.
--
-- FTS5 rows are keyed by an integer. The users' own rowids are not stable (they have a TEXT
-- primary key, and VACUUM may renumber such rows), so each user gets a key of its own in
-- `user_search_keys`, an INTEGER PRIMARY KEY that nothing renumbers. Triggers keep both in
-- step with `users`.

CREATE TABLE user_search_keys (
    key     INTEGER PRIMARY KEY,
    user_id TEXT    NOT NULL
);
CREATE UNIQUE INDEX user_search_keys_user_id_key ON user_search_keys (user_id);

CREATE VIRTUAL TABLE users_search USING fts5 (
    email, username, first_name, last_name,
    tokenize = 'trigram case_sensitive 0'
);

CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO user_search_keys (user_id) VALUES (new.id);
    INSERT INTO users_search (rowid, email, username, first_name, last_name)
    VALUES ((SELECT key FROM user_search_keys WHERE user_id = new.id),
            new.email, new.username, new.first_name, new.last_name);
END;

CREATE TRIGGER users_search_update AFTER UPDATE OF email, username, first_name, last_name
ON users BEGIN
    UPDATE users_search
    SET email = new.email, username = new.username,
        first_name = new.first_name, last_name = new.last_name
    WHERE rowid = (SELECT key FROM user_search_keys WHERE user_id = old.id);
END;

CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    DELETE FROM users_search
    WHERE rowid = (SELECT key FROM user_search_keys WHERE user_id = old.id);
    DELETE FROM user_search_keys WHERE user_id = old.id;
END;

-- The users there are already.
INSERT INTO user_search_keys (user_id) SELECT id FROM users ORDER BY created_at, id;
INSERT INTO users_search (rowid, email, username, first_name, last_name)
SELECT k.key, u.email, u.username, u.first_name, u.last_name
FROM users u JOIN user_search_keys k ON k.user_id = u.id;
