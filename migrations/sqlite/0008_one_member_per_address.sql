-- An e-mail address belongs to one member, whatever its case: the index makes two
-- registrations racing under one new address one and a refusal, which the API's check before
-- writing could not (both checks could pass before either wrote). `lower` is the comparison the
-- API's check makes on this backend.
--
-- Addresses two members already share (registered before the thirty-first session, or by
-- such a race) stay with the member registered first; the others' address is removed (their
-- name stays), as the index cannot be built over them.
UPDATE member_personal_data SET email = NULL
WHERE email IS NOT NULL AND EXISTS (
    SELECT 1 FROM member_personal_data earlier
    WHERE lower(earlier.email) = lower(member_personal_data.email)
      AND (COALESCE((SELECT created_position FROM rm_members WHERE id = earlier.member_id), 9223372036854775807),
           earlier.member_id)
        < (COALESCE((SELECT created_position FROM rm_members WHERE id = member_personal_data.member_id), 9223372036854775807),
           member_personal_data.member_id)
);
CREATE UNIQUE INDEX member_personal_data_email ON member_personal_data (lower(email)) WHERE email IS NOT NULL;
