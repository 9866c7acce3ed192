select
    id as customer_id,
    first_name,
    last_name,
    country_code
from {{ source('raw', 'raw_customers') }}
