"""Forces as the platform keeps them: their files, sync, lifecycle and export."""
