-- Macros every transform may use. Loaded per transform session, after `tonghop_pii_key` is set from the
-- environment (never from code or config).

-- Keyed pseudonym of a personal value: the same person gets the same token in every source (so records
-- still join), nobody without the key can recompute it. The hex digits are mapped to letters so that a
-- token can never look like a CCCD or a phone number to a scanner (or a person).
CREATE OR REPLACE TEMP MACRO pseudonymize(v) AS
    CASE WHEN v IS NULL OR trim(CAST(v AS VARCHAR)) = '' THEN NULL
         ELSE 'ps_' || translate(left(sha256(getvariable('tonghop_pii_key') || '|' || trim(CAST(v AS VARCHAR))), 24),
                                 '0123456789', 'ghijklmnop')
    END;
