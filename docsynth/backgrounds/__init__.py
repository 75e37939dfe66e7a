"""Background folders: records and licences, scraping, HTTP, normalising, dedupe, textures, credits."""
