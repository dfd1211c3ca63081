-- The mcp-mirror snapshot database.
-- Each "-- migration N: title" section runs once, in order, in one transaction with the
-- update of schema_version; a database whose version is higher than the last section
-- here was written by a newer mcp-mirror and is refused.

-- migration 1: snapshots, documents, version history, changes, rejected entries
CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY,
    started_at  VARCHAR NOT NULL,      -- RFC 3339, UTC
    finished_at VARCHAR,
    upstream    VARCHAR NOT NULL,
    mode        VARCHAR NOT NULL,      -- full | incremental
    outcome     VARCHAR NOT NULL,      -- ok | failed
    error       VARCHAR,
    rows        INTEGER NOT NULL DEFAULT 0,
    servers     INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0
);

-- Each distinct upstream item once, whatever the number of snapshots that contain it.
CREATE TABLE documents (
    hash VARCHAR PRIMARY KEY,          -- sha256 of doc
    doc  VARCHAR NOT NULL              -- the upstream ServerResponse, compact, key order kept
);

-- Version history: one row per distinct content of a (name, version), valid in the ok
-- snapshots valid_from <= id < valid_to (valid_to NULL: still current). Storage grows
-- with changes, not with crawls.
CREATE TABLE versions (
    name         VARCHAR NOT NULL,
    version      VARCHAR NOT NULL,
    hash         VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,
    is_latest    BOOLEAN NOT NULL,
    published_at VARCHAR,
    updated_at   VARCHAR,
    valid_from   INTEGER NOT NULL,
    valid_to     INTEGER
);

CREATE TABLE changes (
    snapshot_id INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    kind        VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,
    version     VARCHAR,
    detail      VARCHAR NOT NULL      -- JSON object
);

CREATE TABLE rejected (
    snapshot_id INTEGER NOT NULL,
    seq         INTEGER NOT NULL,     -- position in the crawl
    name        VARCHAR,
    version     VARCHAR,
    reason      VARCHAR NOT NULL,
    doc         VARCHAR NOT NULL
);

-- migration 2: incremental crawls: requests made, the watermark and the updated_since sent
-- watermark: the largest updatedAt among the snapshot's rows, as upstream wrote it (the next
-- incremental crawl asks for rows updated since it, minus an overlap). since: the
-- updated_since this crawl sent (NULL for a full crawl). note: why a full crawl ran, or what
-- the crawl noticed (a clock jump, an upstream that ignored updated_since). source: when the
-- upstream is another mcp-mirror, the snapshot of its change feed this one equals.
ALTER TABLE snapshots ADD COLUMN requests INTEGER DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN watermark VARCHAR;
ALTER TABLE snapshots ADD COLUMN since VARCHAR;
ALTER TABLE snapshots ADD COLUMN note VARCHAR;
ALTER TABLE snapshots ADD COLUMN source INTEGER;
