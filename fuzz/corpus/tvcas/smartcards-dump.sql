-- MariaDB dump 10.19  Distrib 10.3.39-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: tvcas
-- ------------------------------------------------------
-- Written by hand for Castellan's tests (tests/data/tvcas/README.md): the
-- shape of a mysqldump of the free CAS, with invented rows.

/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET TIME_ZONE='+00:00' */;

--
-- Table structure for table `tvcas_logs`
--

DROP TABLE IF EXISTS `tvcas_logs`;
CREATE TABLE `tvcas_logs` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `text` text DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8;

LOCK TABLES `tvcas_logs` WRITE;
INSERT INTO `tvcas_logs` VALUES (1,'Edit smartcard 2100000001; (a semicolon inside a string)'),(2,'it''s \'quoted\'');
UNLOCK TABLES;

--
-- Table structure for table `tvcas_smartcards`
--

DROP TABLE IF EXISTS `tvcas_smartcards`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8 */;
CREATE TABLE `tvcas_smartcards` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `serial_no` int(10) unsigned DEFAULT 0,
  `name` varchar(255) COLLATE utf8_unicode_ci DEFAULT '',
  `info` text COLLATE utf8_unicode_ci DEFAULT NULL,
  `network_id` int(10) unsigned DEFAULT 1,
  `key` varchar(32) COLLATE utf8_unicode_ci DEFAULT '',
  `access_criteria` varchar(8) COLLATE utf8_unicode_ci DEFAULT '00000000',
  `status` tinyint(3) unsigned DEFAULT 1,
  `cn` varchar(255) COLLATE utf8_unicode_ci DEFAULT NULL,
  `type` int(1) DEFAULT 1,
  `pair` int(1) DEFAULT 0,
  `start` int(10) unsigned DEFAULT NULL,
  `finish` int(10) unsigned DEFAULT NULL,
  `c_time` int(10) unsigned DEFAULT NULL,
  `edit` int(10) unsigned DEFAULT NULL,
  `uid` int(2) DEFAULT 15,
  `subscription_slot1` int(10) DEFAULT 0,
  `subscription_slot2` int(10) DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `serial` (`serial_no`)
) ENGINE=MyISAM AUTO_INCREMENT=12 DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `tvcas_smartcards`
--

LOCK TABLES `tvcas_smartcards` WRITE;
/*!40000 ALTER TABLE `tvcas_smartcards` DISABLE KEYS */;
INSERT INTO `tvcas_smartcards` VALUES (7,2100000010,'Anna Kowalska','Kraków, ul. Długa 5/3',1,'00112233445566778899AABBCCDDEEFF','00000005',1,'',2,1,1700000000,1900000000,1699990000,1699999000,15,0,0),(8,2100000011,'Ömer \"Ö\" O\'Neil','line one\nline two\ttabbed',1,'FFEEDDCCBBAA99887766554433221100','8000000F',0,NULL,2,0,1700000000,1800000000,1699990000,NULL,15,0,0),(9,2100000012,NULL,NULL,1,'0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F0F',NULL,NULL,NULL,1,NULL,NULL,NULL,NULL,NULL,15,0,0),
(10,2100000013,'Back\\slash; semi','50%\_off',1,'','ffffffff',1,'',2,0,1700000000,NULL,NULL,NULL,15,0,0);
/*!40000 ALTER TABLE `tvcas_smartcards` ENABLE KEYS */;
UNLOCK TABLES;

-- Dump completed on 2026-12-07 20:00:00
