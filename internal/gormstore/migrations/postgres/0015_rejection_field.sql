-- A remembered refusal keeps the input field it named, so a retry is told
-- the same code, message and field. Rows written before it name none ('').
ALTER TABLE stock_rejections ADD COLUMN field TEXT NOT NULL DEFAULT '';
