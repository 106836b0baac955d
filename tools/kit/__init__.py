"""The shared tool kit. Import pure parts (contract, envelope, validation) from contracts;
the runtime parts (db, handler) are for handlers only."""
