-- The `meta` layer (national data architecture: metadata): what ran, what was loaded, what was checked,
-- which models were trained and which snapshot serves. Every statement is idempotent.
CREATE SCHEMA IF NOT EXISTS raw;        -- source layer: rows as loaded, with lineage
CREATE SCHEMA IF NOT EXISTS staging;    -- master/reference/transactional: typed, cleaned, pseudonymised
CREATE SCHEMA IF NOT EXISTS marts;      -- aggregated and analytical layers, model predictions
CREATE SCHEMA IF NOT EXISTS meta;       -- metadata layer

CREATE TABLE IF NOT EXISTS meta.step_runs (
    run_id        VARCHAR NOT NULL,
    step          VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ NOT NULL,
    summary       JSON,
    PRIMARY KEY (run_id, step)
);

CREATE TABLE IF NOT EXISTS meta.loads (
    batch_id        VARCHAR NOT NULL,
    run_id          VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    location        VARCHAR,
    fingerprint     VARCHAR,
    status          VARCHAR NOT NULL,   -- loaded | unchanged | passed | blocked
    n_rows_read     BIGINT NOT NULL,
    n_rows_loaded   BIGINT NOT NULL,
    n_rows_rejected BIGINT NOT NULL,
    new_columns     VARCHAR[],
    watermark       VARCHAR,
    loaded_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (batch_id, source)
);

CREATE TABLE IF NOT EXISTS meta.validations (
    run_id           VARCHAR NOT NULL,
    batch_id         VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    suite            VARCHAR NOT NULL,
    expectation      VARCHAR NOT NULL,
    column_name      VARCHAR,
    severity         VARCHAR NOT NULL,
    is_success       BOOLEAN NOT NULL,
    n_elements       BIGINT,
    n_unexpected     BIGINT,
    unexpected_pct   DOUBLE,
    observed_value   VARCHAR,
    description      VARCHAR,
    validated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS meta.models (
    model_name        VARCHAR NOT NULL,
    model_version     VARCHAR NOT NULL,
    run_id            VARCHAR NOT NULL,
    trained_at        TIMESTAMPTZ NOT NULL,
    data_fingerprint  VARCHAR NOT NULL,
    params            JSON,
    metrics           JSON,
    artefact_path     VARCHAR,
    model_card        VARCHAR,
    PRIMARY KEY (model_name, model_version)
);

-- Data quality (pipelines/quality/rowchecks.py, expectations/README.md). The promotion invariant of a load:
-- n_rows_read = n_rows_promoted + n_rows_quarantined once `validate` has run (blocked batches promote 0);
-- n_rows_quarantined includes the n_rows_rejected rows the loader held back (on_drift: quarantine).
ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS n_rows_promoted BIGINT;
ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS n_rows_quarantined BIGINT;
ALTER TABLE meta.validations ADD COLUMN IF NOT EXISTS n_quarantined BIGINT;  -- rows this check held back
-- which engine checked the batch: gx (Great Expectations) | sql (pipelines/quality/sqlcheck.py, same results); the
-- suite's fingerprint (pipelines.quality.sqlcheck.suite_fingerprint): SQL only checks suites GX validated before
ALTER TABLE meta.validations ADD COLUMN IF NOT EXISTS engine VARCHAR;
ALTER TABLE meta.validations ADD COLUMN IF NOT EXISTS suite_fingerprint VARCHAR;

-- Rows held back from promotion: one row per primary key of a batch with at least one failed row-level
-- check. Only the key (personal key columns pseudonymised), never the row's other values: those stay in raw.
CREATE TABLE IF NOT EXISTS meta.quarantine (
    run_id              VARCHAR NOT NULL,
    batch_id            VARCHAR NOT NULL,
    source              VARCHAR NOT NULL,
    row_key             VARCHAR NOT NULL,   -- JSON list of the primary-key values
    n_rows              BIGINT NOT NULL,    -- rows of the batch carrying this key (all are held back)
    failed_expectations VARCHAR[] NOT NULL, -- descriptions of the failed checks
    quarantined_at      TIMESTAMPTZ NOT NULL
);

-- Quality scores per run, batch, source and dimension (Decision 1437/QĐ-TTg), in [0, 1].
CREATE TABLE IF NOT EXISTS meta.quality_scores (
    run_id       VARCHAR NOT NULL,
    batch_id     VARCHAR NOT NULL,
    source       VARCHAR NOT NULL,
    dimension    VARCHAR NOT NULL,   -- completeness | uniqueness | validity | consistency | timeliness
    score        DOUBLE NOT NULL,
    n_checked    BIGINT NOT NULL,
    n_failed     BIGINT NOT NULL,
    computed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (batch_id, source, dimension)
);
-- what a score means in words (JSON; timeliness: the data's last date vs the run, pipelines/quality/promotion.py)
ALTER TABLE meta.quality_scores ADD COLUMN IF NOT EXISTS detail VARCHAR;

-- Retention of personal data in raw (pipelines/reference/retention.py): one row per batch purged.
CREATE TABLE IF NOT EXISTS meta.retention_purges (
    source               VARCHAR NOT NULL,
    batch_id             VARCHAR NOT NULL,
    action               VARCHAR NOT NULL,   -- deleted (never promoted) | pseudonymised (personal columns tokenised)
    n_rows_deleted       BIGINT NOT NULL,
    n_rows_pseudonymised BIGINT NOT NULL,
    raw_days             INTEGER NOT NULL,
    cutoff_at            TIMESTAMPTZ NOT NULL,
    purged_at            TIMESTAMPTZ NOT NULL
);

-- Cost follows change (pipelines/incremental.py): what `transform` and `train` last finished with — the
-- promoted batches and purges built from, the fingerprint of models/config/code, each table's version.
-- A step whose input is the recorded one does nothing. Pipeline bookkeeping: never published.
CREATE TABLE IF NOT EXISTS meta.build_state (
    step        VARCHAR PRIMARY KEY,   -- transform | train
    run_id      VARCHAR NOT NULL,      -- the run that finished it
    input_key   VARCHAR NOT NULL,
    detail      JSON,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- File fingerprints (pipelines/sources/base.py file_fingerprint): a file's content hash, kept while its stat
-- is the same (path, size, mtime, inode, ctime), so a re-run over an unchanged file costs a stat, not a re-read.
-- A cache holding server paths: never published.
CREATE TABLE IF NOT EXISTS meta.file_fingerprints (
    path        VARCHAR,
    size        BIGINT,
    mtime_ns    BIGINT,
    fingerprint VARCHAR,
    PRIMARY KEY (path, size, mtime_ns)
);
-- rows cached before inode and ctime were part of the key have them NULL: they never match, hashed once more
ALTER TABLE meta.file_fingerprints ADD COLUMN IF NOT EXISTS ino BIGINT;
ALTER TABLE meta.file_fingerprints ADD COLUMN IF NOT EXISTS ctime_ns BIGINT;
