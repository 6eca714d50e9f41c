-- marts.chat_luong_du_lieu: data-quality scores (chất lượng dữ liệu) per run, source and dimension, with the
-- run's promotion counts: the trend the apps chart. Grain: one row per (run_id, source, dimension).
-- Dimensions and formulas: expectations/README.md (Decision 1437/QĐ-TTg names them).
with

scores as (
    select * from meta.quality_scores
),

loads as (
    select batch_id, source, n_rows_read, n_rows_promoted, n_rows_quarantined, status
    from meta.loads
),

final as (
    select
        scores.run_id,
        scores.source,
        scores.dimension,
        scores.score,
        scores.n_checked,
        scores.n_failed,
        loads.status                        as load_status,
        loads.n_rows_read,
        loads.n_rows_promoted,
        loads.n_rows_quarantined,
        scores.computed_at                  as scored_at    -- first scoring of the batch (kept on retries)
    from scores
    left join loads using (batch_id, source)
)

select * from final order by scored_at, source, dimension
