-- stock_write_check lets one statement refuse its own writes: a stock
-- transaction sends its writes and COMMIT together, so a lost
-- compare-and-set must abort the transaction from inside the statement.
-- SQLSTATE IV001 (class IV is not used by PostgreSQL) means "a level
-- changed concurrently"; the store reports it as a version conflict.
CREATE FUNCTION stock_write_check(ok boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION 'stock level changed concurrently' USING ERRCODE = 'IV001';
    END IF;
    RETURN true;
END
$$;
