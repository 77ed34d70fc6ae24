-- A query's row is written about three times: inserted when submitted, updated as its experts'
-- results come, updated again by the decision. An update that changes no indexed column (a result
-- adds to `experts`) can stay on its page and add no index entry (a HOT update), but only if the
-- page has room: at the default fillfactor of 100 a page is full when its rows are inserted, and
-- only one update in six was HOT. Half of each page is kept free for them (docs/adr/0041). Only
-- pages written from now on leave the room.
ALTER TABLE queries SET (fillfactor = 50);
