module pizauth

go 1.22
