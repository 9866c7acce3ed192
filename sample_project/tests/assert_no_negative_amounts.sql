-- Singular test: refunds are modelled as returns, never as negative payments.
select * from {{ ref('orders') }} where amount < 0
