"""The Temporal worker process: builds the client and runs Capstan's workflows and activities."""
