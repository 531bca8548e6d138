-- Guide 000's alias table, verbatim from the guide.
USE postfix;
CREATE TABLE postfix_aliases (
    id INT AUTO_INCREMENT PRIMARY KEY,
    alias VARCHAR(255) NOT NULL,
    destination VARCHAR(255) NOT NULL,
    active BOOLEAN DEFAULT 1,
    INDEX (alias)
);
INSERT INTO postfix_aliases (alias, destination, active) VALUES
	('johan.bak@lego.dk', 'johan@lego.dk', 1),
	('magnus.holm@lego.dk', 'magnus@lego.dk', 1),
	('noah.klausen@lego.dk', 'noah@lego.dk', 1),
	('group@lego.dk', 'noah@lego.dk', 1),
	('group@lego.dk', 'johan@lego.dk', 1),
	('group@lego.dk', 'magnus@lego.dk', 1);
