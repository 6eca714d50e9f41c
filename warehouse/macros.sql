-- Macros every transform may use. Loaded per transform session, after `tonghop_pii_key` is set from the
-- environment (never from code or config).

-- Keyed pseudonym of a personal value: the same person gets the same token in every source (so records
-- still join), nobody without the key can recompute it. The hex digits are mapped to letters so that a
-- token can never look like a CCCD or a phone number to a scanner (or a person).
CREATE OR REPLACE TEMP MACRO pseudonymize(v) AS
    CASE WHEN v IS NULL OR trim(CAST(v AS VARCHAR)) = '' THEN NULL
         -- already a token (raw past its retention is tokenised in place): unchanged, so it still joins
         WHEN starts_with(lower(trim(CAST(v AS VARCHAR))), 'ps_') THEN lower(trim(CAST(v AS VARCHAR)))
         ELSE 'ps_' || translate(left(sha256(getvariable('tonghop_pii_key') || '|' || trim(CAST(v AS VARCHAR))), 24),
                                 '0123456789', 'ghijklmnop')
    END;

-- Identifiers: the same rules as pipelines/reference/identifiers.py (tests run both on the same inputs).
-- Normalise first, then validate or pseudonymise, so every written form of one number gives one token.
CREATE OR REPLACE TEMP MACRO strip_separators(v) AS
    nullif(regexp_replace(CAST(v AS VARCHAR), '[ \t\r\n.()-]', '', 'g'), '');

-- CCCD: 12 digits = province-of-birth code (63 pre-2025 provinces) + century/sex digit + birth year + 6.
CREATE OR REPLACE TEMP MACRO cccd_normalize(v) AS strip_separators(v);
CREATE OR REPLACE TEMP MACRO is_cccd_valid(v) AS
    CASE WHEN cccd_normalize(v) IS NULL THEN NULL
         ELSE regexp_full_match(cccd_normalize(v), '[0-9]{12}')
              AND left(cccd_normalize(v), 3) IN (
                  '001', '002', '004', '006', '008', '010', '011', '012', '014', '015', '017', '019', '020',
                  '022', '024', '025', '026', '027', '030', '031', '033', '034', '035', '036', '037', '038',
                  '040', '042', '044', '045', '046', '048', '049', '051', '052', '054', '056', '058', '060',
                  '062', '064', '066', '067', '068', '070', '072', '074', '075', '077', '079', '080', '082',
                  '083', '084', '086', '087', '089', '091', '092', '093', '094', '095', '096')
              AND substr(cccd_normalize(v), 4, 1) IN ('0', '1', '2', '3')
    END;
CREATE OR REPLACE TEMP MACRO cccd_birth_year(v) AS
    CASE WHEN is_cccd_valid(v) THEN 1900 + 100 * (CAST(substr(cccd_normalize(v), 4, 1) AS INTEGER) // 2)
                                    + CAST(substr(cccd_normalize(v), 5, 2) AS INTEGER) END;
CREATE OR REPLACE TEMP MACRO cccd_is_female(v) AS
    CASE WHEN is_cccd_valid(v) THEN CAST(substr(cccd_normalize(v), 4, 1) AS INTEGER) % 2 = 1 END;

-- Mobile numbers: one form, 0 + 9 digits; +84 / 84 / 0084 / a lost leading zero are the same number.
CREATE OR REPLACE TEMP MACRO phone_normalize(v) AS
    CASE WHEN regexp_full_match(strip_separators(v), '\+84[0-9]{9}') THEN '0' || substr(strip_separators(v), 4)
         WHEN regexp_full_match(strip_separators(v), '0084[0-9]{9}') THEN '0' || substr(strip_separators(v), 5)
         WHEN regexp_full_match(strip_separators(v), '84[0-9]{9}') THEN '0' || substr(strip_separators(v), 3)
         WHEN regexp_full_match(strip_separators(v), '[1-9][0-9]{8}') THEN '0' || strip_separators(v)
         ELSE strip_separators(v)
    END;
CREATE OR REPLACE TEMP MACRO is_phone_valid(v) AS
    CASE WHEN phone_normalize(v) IS NULL THEN NULL
         ELSE regexp_full_match(phone_normalize(v), '0(3[2-9]|5[25689]|7[06-9]|8[1-9]|9[0-46-9])[0-9]{7}')
    END;
CREATE OR REPLACE TEMP MACRO phone_e164(v) AS
    CASE WHEN is_phone_valid(v) THEN '+84' || substr(phone_normalize(v), 2) END;

-- Tax code (mã số thuế): 10 digits, the 10th = 10 - (31 29 23 19 17 13 7 5 3 · first 9) mod 11; branch -NNN.
CREATE OR REPLACE TEMP MACRO mst_normalize(v) AS
    CASE WHEN regexp_full_match(nullif(regexp_replace(upper(CAST(v AS VARCHAR)), '[ \t\r\n.()]', '', 'g'), ''),
                                '[0-9]{13}')
         THEN left(regexp_replace(CAST(v AS VARCHAR), '[ \t\r\n.()]', '', 'g'), 10) || '-'
              || right(regexp_replace(CAST(v AS VARCHAR), '[ \t\r\n.()]', '', 'g'), 3)
         ELSE nullif(regexp_replace(upper(CAST(v AS VARCHAR)), '[ \t\r\n.()]', '', 'g'), '')
    END;
CREATE OR REPLACE TEMP MACRO is_mst_valid(v) AS
    CASE WHEN mst_normalize(v) IS NULL THEN NULL
         WHEN NOT regexp_full_match(mst_normalize(v), '[0-9]{10}(-[0-9]{3})?')
              OR substr(mst_normalize(v), 11) = '-000' THEN FALSE
         ELSE 10 - list_sum(list_transform(range(9), lambda i:
                  TRY_CAST(substr(mst_normalize(v), i + 1, 1) AS INTEGER) * [31, 29, 23, 19, 17, 13, 7, 5, 3][i + 1]
              )) % 11 = TRY_CAST(substr(mst_normalize(v), 10, 1) AS INTEGER)
    END;

-- Names: NFC, lower case, one space between words, so 'NGUYỄN  Văn A' and 'Nguyễn Văn A' share a token.
CREATE OR REPLACE TEMP MACRO name_normalize(v) AS
    nullif(trim(lower(regexp_replace(nfc_normalize(CAST(v AS VARCHAR)), '[ \t\r\n]+', ' ', 'g'))), '');

-- Administrative-unit names as match keys: no diacritics, no case, no spaces or punctuation, đ -> d.
-- 'UBND Phường Hoa Lư' -> 'ubndphuonghoalu'; `unit_name_key_bare` first drops a leading 'UBND' and the
-- unit kind ('Xã', 'Phường', 'Đặc khu', 'Thị trấn') when it is a word of its own: -> 'hoalu'. The kind is
-- recognised before diacritics go, so the given name 'Phương Lâm' keeps its first word.
CREATE OR REPLACE TEMP MACRO unit_name_key(v) AS
    nullif(regexp_replace(replace(strip_accents(lower(nfc_normalize(CAST(v AS VARCHAR)))), 'đ', 'd'),
                          '[^a-z0-9]+', '', 'g'), '');
CREATE OR REPLACE TEMP MACRO unit_name_key_bare(v) AS
    unit_name_key(regexp_replace(lower(nfc_normalize(CAST(v AS VARCHAR))),
                  '^[ \t\r\n]*((ubnd|ủy ban nhân dân|uỷ ban nhân dân|uy ban nhan dan)[ \t\r\n]+)?'
                  || '(xã|phường|đặc khu|thị trấn|xa|phuong|dac khu|thi tran)[ \t\r\n]+', ''));

-- Vietnamese formats, for source mappings onto shared contracts (pipelines/contracts.py, docs/contracts.md).
-- vn_date('15/06/2023') -> 2023-06-15 (also dd-mm-yyyy, dd.mm.yyyy, yyyy-mm-dd); text that is not a date -> NULL.
CREATE OR REPLACE TEMP MACRO vn_date(v) AS
    CAST(try_strptime(nullif(trim(CAST(v AS VARCHAR)), ''), ['%d/%m/%Y', '%d-%m-%Y', '%d.%m.%Y', '%Y-%m-%d']) AS DATE);
-- vn_number('1.234,5') -> 1234.5: thousands dots (and spaces) out, the decimal comma to a point; a value that
-- is already a number stays as it is; text that is not a number -> NULL.
CREATE OR REPLACE TEMP MACRO vn_number(v) AS
    CASE WHEN typeof(v) IN ('DOUBLE', 'FLOAT', 'INTEGER', 'BIGINT', 'SMALLINT', 'TINYINT', 'HUGEINT')
              OR starts_with(typeof(v), 'DECIMAL') THEN TRY_CAST(v AS DOUBLE)
         ELSE TRY_CAST(replace(replace(replace(nullif(trim(CAST(v AS VARCHAR)), ''), ' ', ''), '.', ''), ',', '.')
                       AS DOUBLE)
    END;
