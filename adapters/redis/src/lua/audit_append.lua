-- KEYS: the user's event stream, the user's noise counter. ARGV: as `append_event`
-- (audit_prelude.lua) takes them from ARGV[1].
-- Appends the event and trims by count and age, in one step. A noise event past the
-- budget stores nothing: 0; else 1.
return append_event(KEYS[1], KEYS[2], 1)
