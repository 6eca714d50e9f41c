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
