-- A reservation made with an idempotency key K records "reserve:K" (and the
-- request's hash) on its first RESERVE movement, so that a stock
-- transaction finds a retry or a concurrent duplicate among the movements'
-- keys, as it does a stock movement's. Reservations made before that get
-- the key on their first RESERVE movement here.
UPDATE stock_movements
SET idempotency_key = 'reserve:' || (SELECT r.idempotency_key FROM reservations r WHERE r.id = stock_movements.reservation_id),
    request_hash = (SELECT r.request_hash FROM reservations r WHERE r.id = stock_movements.reservation_id)
WHERE type = 'RESERVE'
  AND idempotency_key IS NULL
  AND reservation_id IN (SELECT id FROM reservations WHERE idempotency_key IS NOT NULL)
  AND seq = (SELECT min(m.seq) FROM stock_movements m WHERE m.reservation_id = stock_movements.reservation_id AND m.type = 'RESERVE');
