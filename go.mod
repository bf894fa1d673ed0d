module pizauth

go 1.26
