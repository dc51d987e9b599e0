"""soundaq model zoo: audio -> features -> data module -> networks -> one LightningModule."""
