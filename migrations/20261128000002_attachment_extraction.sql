-- Text from attachments: when an attachment's file arrives, an `extract_attachment` job is
-- enqueued in the same transaction (OCR for images, speech-to-text for voice notes); a job that
-- cannot succeed leaves the attachment `failed` with the reason in `error`.
alter table public.attachments add column error text;

-- (private.object_arrived: its definition lives in migrations/replaceable/storage.sql.)
alter function private.object_arrived() owner to tally_definer;
