-- staging.can_bo: one-stop-shop officers (cán bộ một cửa) per receiving agency, from the latest roster.
-- Reads the shared contract `can_bo` (warehouse/contracts/can_bo.yml). Grain: co_quan. Feeds the staffing model's capacity per officer.
with

source as (
    select * from contract_can_bo
),

final as (
    select
        trim(co_quan)                   as co_quan,
        cast(so_can_bo as integer)      as so_can_bo
    from source
    where so_can_bo is not null and so_can_bo >= 0
)

select * from final order by co_quan
