"""The API, one small module per area; `common` holds the parameters they share."""
