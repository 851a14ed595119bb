"""explorer.session: the Session that owns all state (model slots, masks, history, jobs)."""
