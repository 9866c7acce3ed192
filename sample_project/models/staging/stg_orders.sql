select
    o.id as order_id,
    o.user_id as customer_id,
    cast(o.order_date as date) as order_date,
    o.status,
    s.is_final
from {{ source('raw', 'raw_orders') }} as o
left join {{ ref('order_statuses') }} as s on s.status = o.status
