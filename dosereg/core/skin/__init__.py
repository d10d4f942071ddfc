"""Data behind the skin-dose engine (:mod:`dosereg.core.skin_dose`): correction tables with their sources
(:mod:`.corrections`) and the vendors' table and angle conventions with their evidence (:mod:`.vendors`)."""
